"""Labels: one per user per image; the consensus is kept on the image for fast galleries."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from webapp.datasets.models import IonImage, Label
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
    for image_id, value, unsure in Label.objects.filter(image_id__in=image_ids).values_list("image_id", "value", "unsure"):
        counts[image_id] += 1
        if not unsure:
            values[image_id].append(value)
    images = list(IonImage.objects.filter(pk__in=image_ids))
    for im in images:
        im.consensus, im.users_disagree = consensus_of(values[im.pk])
        im.label_count = counts[im.pk]
    IonImage.objects.bulk_update(images, ["consensus", "users_disagree", "label_count"], batch_size=500)


def set_labels(project: Project, images: list[IonImage], user, value: str | list[str] | None,
               unsure: bool = False) -> str:
    """Set `user`'s label on each image (last write wins). Returns the stored value."""
    stored = "" if unsure and not value else normalise(project, value)
    ids = sorted(im.pk for im in images)
    now = timezone.now()
    with transaction.atomic():
        # Lock the images so concurrent writers recompute the consensus one after another.
        list(IonImage.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
        Label.objects.bulk_create(
            [Label(image_id=i, user=user, value=stored, unsure=unsure, created_at=now, updated_at=now) for i in ids],
            update_conflicts=True,
            unique_fields=["image", "user"],
            update_fields=["value", "unsure", "updated_at"],
        )
        _refresh(ids)
    _changed(project, len(ids))
    return stored


def remove_labels(project: Project, images: list[IonImage], user) -> int:
    ids = sorted(im.pk for im in images)
    with transaction.atomic():
        list(IonImage.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
        deleted, _ = Label.objects.filter(image_id__in=ids, user=user).delete()
        _refresh(ids)
    _changed(project, deleted)
    return deleted


def _changed(project: Project, count: int) -> None:
    from webapp.datasets.signals import labels_changed

    if count:
        transaction.on_commit(lambda: labels_changed.send(sender=Project, project=project, count=count))
