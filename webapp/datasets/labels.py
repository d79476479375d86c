"""Labels: one per user per image; the consensus is kept on the image for fast galleries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from webapp.datasets.models import IonImage, Label, LabelEvent
from webapp.projects.models import Project, Task


class LabelError(ValueError):
    """A label that does not fit the project's classes."""


def normalise(project: Project, value: str | list[str] | None) -> str:
    """Validate a label against the project's schema; multi-label values come back sorted
    in class order and joined by spaces."""
    if value is None:
        raise LabelError("Give a class name.")
    names = value if isinstance(value, list) else str(value).replace(",", " ").split()
    names = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in project.classes]
    if unknown:
        raise LabelError(
            f"Unknown class {', '.join(repr(u) for u in unknown)}; this project's classes are "
            f"{', '.join(project.classes)}."
        )
    if project.task == Task.MULTILABEL:
        chosen = set(names)
        return " ".join(c for c in project.classes if c in chosen)
    if len(names) != 1:
        raise LabelError("Give exactly one class name for this project.")
    return names[0]


def consensus_of(values: Iterable[str]) -> tuple[str | None, bool]:
    """Majority label (None on a tie or with no labels) and whether users disagree."""
    counts = Counter(values)
    if not counts:
        return None, False
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, True
    return ranked[0][0], len(ranked) > 1


def _lock_and_read(ids: list[int]) -> dict[int, dict[int, tuple[str, bool]]]:
    """Lock the images, then read every label on them: {image: {user: (value, unsure)}}. Every
    label write goes through `write`, which takes these locks first, so the labels cannot change
    under it until it commits. Locked in pk order and only the images (`of=self`): the model's
    default ordering joins the dataset, and FOR UPDATE over that join locked the dataset's row
    too, so every label write of a dataset waited for the one before.
    The labels are read by a second statement, after the locks: on PostgreSQL a statement that
    waited for a lock re-checks only the locked rows, so labels joined into the locking statement
    came from its snapshot from before the wait, without the label the other writer had just
    committed (a stale consensus under concurrent labelling)."""
    locked = list(
        IonImage.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    found: dict[int, dict[int, tuple[str, bool]]] = {pk: {} for pk in locked}
    for image_id, user_id, value, unsure in Label.objects.filter(image_id__in=locked).values_list(
        "image_id", "user_id", "value", "unsure"
    ):
        found[image_id][user_id] = (value, unsure)
    return found


def _consensus(
    labels: dict[int, dict[int, tuple[str, bool]]], user_id: int, after
) -> dict[int, tuple[str | None, bool, int]]:
    """(consensus, disagreement, count) of each image from its labels as read under the lock,
    with `user_id`'s label now `after` ((None, False): removed)."""
    out = {}
    for i, by_user in labels.items():
        by_user = dict(by_user)
        if after[0] is None:
            by_user.pop(user_id, None)
        else:
            by_user[user_id] = after
        consensus, disagree = consensus_of(v for v, unsure in by_user.values() if not unsure)
        out[i] = (consensus, disagree, len(by_user))
    return out


def _store_consensus(state: dict[int, tuple[str | None, bool, int]]) -> None:
    if len(state) == 1:  # one label from the gallery: a plain UPDATE (no CASE per field to build)
        [(pk, (consensus, disagree, count))] = state.items()
        IonImage.objects.filter(pk=pk).update(consensus=consensus, users_disagree=disagree, label_count=count)
        return
    # bulk_update writes only these fields by pk: no need to read the rows first.
    images = [
        IonImage(pk=i, consensus=consensus, users_disagree=disagree, label_count=count)
        for i, (consensus, disagree, count) in state.items()
    ]
    IonImage.objects.bulk_update(images, ["consensus", "users_disagree", "label_count"], batch_size=500)


def _refresh_in_hand(images: list[IonImage], state: dict[int, tuple[str | None, bool, int]]) -> None:
    """The images passed in get the consensus fields as committed (the API answers from them)."""
    for im in images:
        if im.pk in state:
            im.consensus, im.users_disagree, im.label_count = state[im.pk]


def set_labels(
    project: Project,
    images: list[IonImage],
    user,
    value: str | list[str] | None,
    unsure: bool = False,
    source: str = LabelEvent.Source.API,
    actor=None,
) -> str:
    """Set `user`'s label on each image (last write wins). Returns the stored value.
    Every change is kept as a LabelEvent (`actor` made it; by default `user` did)."""
    stored = "" if unsure and not value else normalise(project, value)
    ids = sorted(im.pk for im in images)
    state: dict = {}
    with transaction.atomic():
        changed = write(ids, user, stored, unsure, source, actor, state=state)
    _refresh_in_hand(images, state)
    notify_changed(project, changed)
    return stored


def remove_labels(
    project: Project, images: list[IonImage], user, source: str = LabelEvent.Source.API, actor=None
) -> int:
    ids = sorted(im.pk for im in images)
    state: dict = {}
    with transaction.atomic():
        removed = write(ids, user, None, False, source, actor, state=state)
    _refresh_in_hand(images, state)
    notify_changed(project, removed)
    return removed


def write(
    ids: list[int],
    user,
    value: str | None,
    unsure: bool,
    source: str,
    actor=None,
    now=None,
    state: dict | None = None,
) -> int:
    """Inside a transaction: set (or with value None remove) `user`'s label on the images,
    record one event per real change and refresh the consensus. Returns how many changed.
    Writes that share `now` are one action for undo. `state`, if given, receives every image's
    (consensus, disagreement, label count) as this write leaves them."""
    now = now or timezone.now()
    # Concurrent writers of the same images recompute the consensus one after another.
    current = _lock_and_read(ids)
    before = {i: labels[user.pk] for i, labels in current.items() if user.pk in labels}
    after = (value, unsure) if value is not None else (None, False)
    changed = [i for i in ids if before.get(i, (None, False)) != after]
    if value is None:
        Label.objects.filter(image_id__in=changed, user=user).delete()
    else:
        Label.objects.bulk_create(
            [
                Label(image_id=i, user=user, value=value, unsure=unsure, created_at=now, updated_at=now)
                for i in changed
            ],
            update_conflicts=True,
            unique_fields=["image", "user"],
            update_fields=["value", "unsure", "updated_at"],
            batch_size=1000,
        )
    LabelEvent.objects.bulk_create(
        [
            LabelEvent(
                image_id=i,
                user=user,
                actor=actor or user,
                value=after[0],
                unsure=after[1],
                previous=before.get(i, (None, False))[0],
                previous_unsure=before.get(i, (None, False))[1],
                source=source,
                at=now,
            )
            for i in changed
        ],
        batch_size=1000,
    )
    after_write = _consensus(current, user.pk, after)
    _store_consensus({i: after_write[i] for i in changed if i in after_write})
    if state is not None:
        state.update(after_write)
    return len(changed)


def change_class(
    project: Project,
    images: list[IonImage],
    user,
    name: str,
    add: bool,
    source: str = LabelEvent.Source.API,
    actor=None,
) -> int:
    """Multi-label: add (or remove) one class on each image, keeping the user's other classes."""
    name = normalise(project, name)
    if " " in name:
        raise LabelError("Give exactly one class to add or remove.")
    ids = sorted(im.pk for im in images)
    now = timezone.now()
    with transaction.atomic():
        mine = dict(
            Label.objects.filter(image_id__in=ids, user=user, unsure=False).values_list("image_id", "value")
        )
        groups: dict[str | None, list[int]] = {}
        for i in ids:
            chosen = set(mine.get(i, "").split())
            chosen = chosen | {name} if add else chosen - {name}
            value = " ".join(c for c in project.classes if c in chosen) or None
            groups.setdefault(value, []).append(i)
        changed = sum(write(group, user, value, False, source, actor, now) for value, group in groups.items())
    notify_changed(project, changed)
    return changed


def notify_changed(project: Project, count: int) -> None:
    from webapp.datasets.signals import labels_changed

    if count:
        transaction.on_commit(lambda: labels_changed.send(sender=Project, project=project, count=count))
