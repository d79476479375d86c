"""Label history: every change is a LabelEvent, so labels can be audited, undone after a
reload and restored as they were at any time (a mistaken bulk label is one action away)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from webapp.datasets import labels
from webapp.datasets.models import Label, LabelEvent
from webapp.projects.models import Project

State = tuple[str | None, bool]  # (value or None for "no label", unsure)


def for_image(image_id: int) -> QuerySet[LabelEvent]:
    """Newest first."""
    return LabelEvent.objects.filter(image_id=image_id).select_related("user", "actor").order_by("-at", "-pk")


def for_project(project: Project, user=None) -> QuerySet[LabelEvent]:
    qs = LabelEvent.objects.filter(image__dataset__project=project)
    if user is not None:
        qs = qs.filter(user=user)
    return qs.select_related("user", "actor", "image", "image__dataset").order_by("-at", "-pk")


def event_json(e: LabelEvent) -> dict:
    """The history contract: who, new and previous label (None = no label), when, from where."""
    return {
        "user": e.user.username,
        "label": e.value,
        "previous": e.previous,
        "at": e.at.isoformat(),
        "source": e.source,
        "unsure": e.unsure,
        "by": e.actor.username if e.actor else None,
    }


def restore(project: Project, at: datetime, user=None, actor=None) -> int:
    """Set every label of `user` (or of everyone) in the project back to what it was at `at`.
    Returns how many labels changed; the restore itself is recorded as events."""
    events = LabelEvent.objects.filter(image__dataset__project=project, at__lte=at)
    current = Label.objects.filter(image__dataset__project=project)
    if user is not None:
        events, current = events.filter(user=user), current.filter(user=user)
    then: dict[tuple[int, int], State] = {}
    for image_id, user_id, value, unsure in (
        events.order_by("at", "pk")
        .values_list("image_id", "user_id", "value", "unsure")
        .iterator(chunk_size=5000)
    ):
        then[(image_id, user_id)] = (value, unsure) if value is not None else (None, False)
    now: dict[tuple[int, int], State] = {
        (i, u): (v, s) for i, u, v, s in current.values_list("image_id", "user_id", "value", "unsure")
    }
    # Pairs labelled only after `at` go back to "no label"; pairs with a different state go back to it.
    wanted = {pair: then.get(pair, (None, False)) for pair in set(then) | set(now)}
    return _apply(project, {p: s for p, s in wanted.items() if now.get(p, (None, False)) != s}, actor)


def undo_last(project: Project, user) -> list[int]:
    """Revert `user`'s most recent change in the project (one key press or one bulk action),
    as long as nobody changed those labels since. Repeated calls walk further back.
    Returns the ids of the images whose labels changed back."""
    mine = LabelEvent.objects.filter(image__dataset__project=project, actor=user, reverted=False)
    last = mine.exclude(source=LabelEvent.Source.RESTORE).order_by("-at", "-pk").first()
    if last is None:
        return []
    batch = list(mine.filter(at=last.at, source=last.source))
    current = {
        (i, u): (v, s)
        for i, u, v, s in Label.objects.filter(image_id__in=[e.image_id for e in batch]).values_list(
            "image_id", "user_id", "value", "unsure"
        )
    }
    wanted = {}
    for e in batch:
        pair = (e.image_id, e.user_id)
        if current.get(pair, (None, False)) == (
            (e.value, e.unsure) if e.value is not None else (None, False)
        ):
            wanted[pair] = (e.previous, e.previous_unsure) if e.previous is not None else (None, False)
    with transaction.atomic():
        _apply(project, wanted, user)
        LabelEvent.objects.filter(pk__in=[e.pk for e in batch]).update(reverted=True)
    return sorted({image_id for image_id, _ in wanted})


def _apply(project: Project, wanted: dict[tuple[int, int], State], actor) -> int:
    """Write the wanted states, grouped so that each (user, value) is one bulk write."""
    from django.contrib.auth import get_user_model

    groups: dict[tuple[int, str | None, bool], list[int]] = defaultdict(list)
    for (image_id, user_id), (value, unsure) in wanted.items():
        groups[(user_id, value, unsure)].append(image_id)
    users = get_user_model().objects.in_bulk({u for u, _, _ in groups})
    changed, now = 0, timezone.now()
    with transaction.atomic():
        for (user_id, value, unsure), ids in groups.items():
            changed += labels.write(
                sorted(ids), users[user_id], value, unsure, LabelEvent.Source.RESTORE, actor, now
            )
    labels.notify_changed(project, changed)
    return changed
