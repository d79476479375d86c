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


def _refresh(image_ids: list[int]) -> None:
    values: dict[int, list[str]] = {i: [] for i in image_ids}
    counts: dict[int, int] = dict.fromkeys(image_ids, 0)
    for image_id, value, unsure in Label.objects.filter(image_id__in=image_ids).values_list(
        "image_id", "value", "unsure"
    ):
        counts[image_id] += 1
        if not unsure:
            values[image_id].append(value)
    # bulk_update writes only these fields by pk: no need to read the rows first.
    images = []
    for i in image_ids:
        consensus, disagree = consensus_of(values[i])
        images.append(IonImage(pk=i, consensus=consensus, users_disagree=disagree, label_count=counts[i]))
    IonImage.objects.bulk_update(images, ["consensus", "users_disagree", "label_count"], batch_size=500)


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
    with transaction.atomic():
        changed = write(ids, user, stored, unsure, source, actor)
    notify_changed(project, changed)
    return stored


def remove_labels(
    project: Project, images: list[IonImage], user, source: str = LabelEvent.Source.API, actor=None
) -> int:
    ids = sorted(im.pk for im in images)
    with transaction.atomic():
        removed = write(ids, user, None, False, source, actor)
    notify_changed(project, removed)
    return removed


def write(ids: list[int], user, value: str | None, unsure: bool, source: str, actor=None, now=None) -> int:
    """Inside a transaction: set (or with value None remove) `user`'s label on the images,
    record one event per real change and refresh the consensus. Returns how many changed.
    Writes that share `now` are one action for undo."""
    now = now or timezone.now()
    # Lock the images so concurrent writers recompute the consensus one after another. Ordered
    # by pk: the model's default ordering joins the dataset, and FOR UPDATE then locked the
    # dataset's row too, so every label write of a dataset waited for the one before it.
    list(IonImage.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    before = {
        i: (v, u)
        for i, v, u in Label.objects.filter(image_id__in=ids, user=user).values_list(
            "image_id", "value", "unsure"
        )
    }
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
    _refresh(changed)
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
