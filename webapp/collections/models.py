"""Labelled collections: named, versioned, frozen snapshots of labelled images to share."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q


class CollectionQuerySet(models.QuerySet):
    def visible_to(self, user) -> CollectionQuerySet:
        if not user.is_authenticated:
            return self.none()
        return self.filter(Q(owner=user) | Q(public=True) | Q(shared_with=user)).distinct()


class Collection(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections")
    # Read-only access for these users; `public` opens it to every account on the server.
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="shared_collections"
    )
    public = models.BooleanField(default=False)
    task = models.CharField(max_length=16)
    classes = models.JSONField(default=list)
    channels = models.JSONField(default=list, blank=True)
    source_project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CollectionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def visible_to(self, user) -> bool:
        return Collection.objects.visible_to(user).filter(pk=self.pk).exists()

    @property
    def latest(self) -> CollectionVersion | None:
        return self.versions.order_by("-number").first()


class CollectionVersion(models.Model):
    """Never changed once written: a new snapshot makes a new version."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    note = models.CharField(max_length=300, blank=True)
    item_count = models.PositiveIntegerField(default=0)
    label_counts = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "number"], name="one_collection_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.collection} v{self.number}"

    @property
    def directory(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "collections" / str(self.collection_id) / f"v{self.number}"

    @property
    def array_path(self) -> Path:
        return self.directory / "images.npy"


class CollectionItem(models.Model):
    version = models.ForeignKey(CollectionVersion, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField()
    dataset_name = models.CharField(max_length=200)
    name = models.CharField(max_length=255)
    mz = models.FloatField(null=True, blank=True)
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    label = models.CharField(max_length=1000)
    # Who labelled what, frozen with the snapshot: {"username": "off", ...}.
    labels_by = models.JSONField(default=dict)

    class Meta:
        ordering = ["version", "index"]
        constraints = [models.UniqueConstraint(fields=["version", "index"], name="one_item_per_index")]

    def __str__(self) -> str:
        return f"{self.dataset_name}/{self.name}"


class TrainingCollection(models.Model):
    """A shared collection a project adds to its training data (the latest version, or a pinned one)."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="training_collections"
    )
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="uses")
    pinned_version = models.ForeignKey(
        CollectionVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "collection"], name="one_use_per_project")]

    def __str__(self) -> str:
        return f"{self.collection} in {self.project}"
