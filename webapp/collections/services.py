"""Snapshotting labelled images into collections, sharing them, exporting them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q

from webapp.collections.models import (
    Collection,
    CollectionItem,
    CollectionQuerySet,
    CollectionVersion,
    TrainingCollection,
)
from webapp.datasets import arrays, storage
from webapp.datasets.models import IonImage, Label
from webapp.projects.models import Project, Task


def labelled(images: Iterable[IonImage]) -> list[IonImage]:
    return [im for im in images if im.consensus]


def ready_images(project: Project, dataset_ids: Iterable[int] | None = None):
    """The images a snapshot draws from: the project's ready datasets, or only the chosen ones."""
    images = IonImage.objects.filter(dataset__project=project, dataset__status="ready")
    if dataset_ids:
        images = images.filter(dataset_id__in=dataset_ids)
    return images


def grouped_for(user) -> dict[str, list[Collection]]:
    """The collections a user sees, as the list page shows them: theirs, shared with them, public."""
    visible = Collection.objects.visible_to(user).select_related("owner").prefetch_related("versions")
    return {
        "mine": [c for c in visible if c.owner_id == user.pk],
        "shared": [c for c in visible if c.owner_id != user.pk and c.shared_with.filter(pk=user.pk).exists()],
        "public": [c for c in visible if c.owner_id != user.pk and c.public],
    }


def usable_for(user, project: Project) -> CollectionQuerySet:
    """Collections the user could add to the project's training: visible to them, same task."""
    return Collection.objects.visible_to(user).filter(task=project.task)


def stop_using(project: Project, use_id) -> None:
    """The project's training no longer includes this collection (a missing one is no error)."""
    project.training_collections.filter(pk=use_id).delete()


@transaction.atomic
def create_collection(project: Project, user, name: str, images, description: str = "") -> Collection:
    name = name.strip()
    if not name:
        raise ValidationError("Give the collection a name.")
    if Collection.objects.filter(owner=user, name__iexact=name).exists():
        raise ValidationError(f"You already have a collection named '{name}'.")
    collection = Collection.objects.create(
        name=name,
        description=description,
        owner=user,
        task=project.task,
        classes=project.classes,
        channels=project.channels,
        source_project=project,
    )
    snapshot(collection, user, images, note="first version")
    return collection


def snapshot(collection: Collection, user, images, note: str = "") -> CollectionVersion:
    """Freeze the labelled images among `images` (with who labelled what) as a new version."""
    ims = labelled(
        images.select_related("dataset").order_by("dataset_id", "index")
        if hasattr(images, "select_related")
        else images
    )
    if not ims:
        raise ValidationError("None of the selected images has a label: label some images first.")
    with transaction.atomic():
        number = (collection.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = CollectionVersion.objects.create(
            collection=collection, number=number, note=note, created_by=user
        )
        arrays, contexts = _arrays(ims)
        H = max(a.shape[0] for a in arrays)
        W = max(a.shape[1] for a in arrays)
        extra = arrays[0].shape[2:]
        stack = np.full((len(arrays), H, W, *extra), np.nan, dtype=np.float32)
        ctx = np.full((len(arrays), H, W), np.nan, dtype=np.float32)
        for i, (a, c) in enumerate(zip(arrays, contexts, strict=True)):
            stack[i, : a.shape[0], : a.shape[1]] = a
            ctx[i, : c.shape[0], : c.shape[1]] = c
        version.directory.mkdir(parents=True, exist_ok=True)
        storage.save_npy(version.array_path, stack)
        storage.save_npy(version.directory / "contexts.npy", ctx)
        by_image: dict[int, dict[str, str]] = {}
        for image_id, username, value in Label.objects.filter(image__in=ims, unsure=False).values_list(
            "image_id", "user__username", "value"
        ):
            by_image.setdefault(image_id, {})[username] = value
        CollectionItem.objects.bulk_create(
            [
                CollectionItem(
                    version=version,
                    index=i,
                    dataset_name=im.dataset.name,
                    name=im.name or im.display_name,
                    mz=im.mz,
                    height=arrays[i].shape[0],
                    width=arrays[i].shape[1],
                    label=im.consensus,
                    labels_by=by_image.get(im.pk, {}),
                )
                for i, im in enumerate(ims)
            ]
        )
        counts = Counter(
            n
            for im in ims
            for n in (im.consensus.split() if collection.task == Task.MULTILABEL else [im.consensus])
        )
        version.item_count, version.label_counts = len(ims), dict(counts)
        version.save(update_fields=["item_count", "label_counts"])
    return version


def _arrays(ims: list[IonImage]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each image's array and its dataset context, in the order of `ims`."""
    by_ds: dict[int, list[IonImage]] = {}
    for im in ims:
        by_ds.setdefault(im.dataset_id, []).append(im)
    order = {im.pk: n for n, im in enumerate(ims)}
    out_a: list = [None] * len(ims)
    out_c: list = [None] * len(ims)
    for group in by_ds.values():
        a, c = arrays.arrays_for(group[0].dataset, group, with_context=True)
        for im, x, y in zip(group, a, c, strict=True):
            out_a[order[im.pk]], out_c[order[im.pk]] = x, y
    return out_a, out_c


def share(collection: Collection, identifiers: list[str], public: bool | None = None) -> list[str]:
    """Give read access to users (by username or e-mail); returns the usernames added."""
    User = get_user_model()
    added, unknown = [], []
    for ident in identifiers:
        ident = ident.strip()
        if not ident:
            continue
        user = User.objects.filter(Q(username__iexact=ident) | Q(email__iexact=ident)).first()
        if user is None:
            unknown.append(ident)
        elif user != collection.owner:
            added.append(user)
    if unknown:
        raise ValidationError(f"No user with the username or e-mail: {', '.join(unknown)}.")
    collection.shared_with.add(*added)
    if public is not None:
        collection.public = public
        collection.save(update_fields=["public"])
    return [u.username for u in added]


def revoke(collection: Collection, username: str) -> None:
    collection.shared_with.remove(*collection.shared_with.filter(username=username))


def use_for_training(
    project: Project, collection: Collection, user, version: CollectionVersion | None = None
) -> TrainingCollection:
    if not collection.visible_to(user):
        raise ValidationError("This collection is not shared with you.")
    if collection.task != project.task or sorted(collection.classes) != sorted(project.classes):
        missing = set(collection.classes) - set(project.classes)
        if collection.task != project.task or missing:
            raise ValidationError(
                f"The collection's classes ({', '.join(collection.classes)}, {collection.task}) do not match this "
                f"project's ({', '.join(project.classes)}, {project.task})."
            )
    use, _ = TrainingCollection.objects.update_or_create(
        project=project, collection=collection, defaults={"pinned_version": version, "added_by": user}
    )
    return use
