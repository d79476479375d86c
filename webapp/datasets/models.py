"""Datasets, their images and the labels users give them."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db import models
from django.urls import reverse


class Dataset(models.Model):
    class Kind(models.TextChoices):
        IMZML = "imzml", "MSI dataset (imzML)"
        IMAGES = "images", "Image collection"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.IMZML)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    # Ingestion options: ppm, top, tic (and the m/z list's file name).
    params = models.JSONField(default=dict, blank=True)
    # What the source file says: grid, m/z range, instrument, spectrum counts...
    metadata = models.JSONField(default=dict, blank=True)
    height = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    channels = models.PositiveIntegerField(default=1)
    image_count = models.PositiveIntegerField(default=0)
    # Bumped at every successful (re)processing; part of thumbnail URLs and ETags.
    revision = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("pages:dataset", args=[self.pk])

    # Files live under MEDIA_ROOT/datasets/<id>/; nothing user-supplied enters these paths.
    @property
    def directory(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "datasets" / str(self.pk)

    @property
    def source_dir(self) -> Path:
        return self.directory / "source"

    @property
    def imzml_path(self) -> Path:
        return self.source_dir / "data.imzML"

    @property
    def ibd_path(self) -> Path:
        return self.source_dir / "data.ibd"

    @property
    def mz_list_path(self) -> Path:
        return self.source_dir / "mz_list.csv"

    @property
    def array_path(self) -> Path:
        return self.directory / "ion_images.npy"

    @property
    def tic_path(self) -> Path:
        return self.directory / "tic.npy"

    @property
    def spectrum_path(self) -> Path:
        return self.directory / "mean_spectrum.npz"

    @property
    def thumbs_dir(self) -> Path:
        return self.directory / "thumbs"

    def thumb_path(self, index: int) -> Path:
        return self.thumbs_dir / f"{index}.png"

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY


class IonImage(models.Model):
    """One image of a dataset: an ion image (one m/z) or an imported picture.

    The prediction and consensus fields are copies kept in step by the services so that
    galleries of 10,000+ images sort and filter inside the database.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    # The dataset's project, copied (an image never changes project): project-wide galleries
    # filter and sort on this table alone, so indexes serve their orderings (issue 13). No index
    # of its own: the project_image_by_* indexes below start with it.
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    index = models.PositiveIntegerField()
    mz = models.FloatField(null=True, blank=True)
    name = models.CharField(max_length=255, blank=True)
    formula = models.CharField(max_length=120, blank=True)
    adduct = models.CharField(max_length=40, blank=True)
    height = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    probability = models.FloatField(null=True, blank=True)
    probabilities = models.JSONField(null=True, blank=True)
    predicted = models.CharField(max_length=1000, blank=True)
    uncertainty = models.FloatField(null=True, blank=True)
    # Which scorer made the prediction above: a model version, or None for the default score.
    # The one place datasets refers to classifier, in the schema only (a lazy string reference;
    # no datasets code imports classifier, and only classifier writes it): a relation, not a
    # copied number, so a deleted version clears the tag instead of naming a reused number.
    prediction_version = models.ForeignKey(
        "classifier.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consensus = models.CharField(max_length=1000, null=True, blank=True)
    label_count = models.PositiveIntegerField(default=0)
    users_disagree = models.BooleanField(default=False)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [models.UniqueConstraint(fields=["dataset", "index"], name="one_image_per_index")]
        # Each gallery ordering ends with `index` as a tie-breaker, so the index covers it too;
        # across a project (index repeats in every dataset) `id` ends it, for keyset pages.
        indexes = [
            models.Index(fields=["dataset", "probability", "index"], name="image_by_probability"),
            models.Index(fields=["dataset", "uncertainty", "index"], name="image_by_uncertainty"),
            models.Index(fields=["dataset", "mz", "index"], name="image_by_mz"),
            models.Index(fields=["dataset", "name", "index"], name="image_by_name"),
            models.Index(fields=["dataset", "consensus"], name="image_by_label"),
            # Covering on PostgreSQL (INCLUDE; ignored elsewhere): the project gallery's filter
            # reads dataset_id, so a page is an index-only scan once the table is vacuumed.
            *[
                models.Index(
                    fields=["project", key, "index", "id"],
                    include=["dataset"],
                    name=f"project_image_by_{key}",
                )
                for key in ("probability", "uncertainty", "mz", "name")
            ],
            models.Index(
                fields=["project", "dataset", "index"], include=["id"], name="project_image_by_index"
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"#{self.index}"

    def save(self, *args, **kwargs) -> None:
        # Rows made one at a time (tests, shells) take the dataset's project; save_images sets it.
        if self.project_id is None and self.dataset_id is not None:
            self.project_id = self.dataset.project_id
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return f"m/z {self.mz:.4f}" if self.mz is not None else f"image {self.index}"


class Label(models.Model):
    """One user's label for one image; for multi-label the class names joined by spaces."""

    image = models.ForeignKey(IonImage, on_delete=models.CASCADE, related_name="labels")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labels")
    value = models.CharField(max_length=1000, blank=True)
    unsure = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "user"], name="one_label_per_user_per_image")]
        indexes = [models.Index(fields=["user", "image"])]

    def __str__(self) -> str:
        return f"{self.user}: {self.value}"

    @property
    def classes(self) -> list[str]:
        return self.value.split() if self.value else []


class LabelEvent(models.Model):
    """One change of one user's label on one image, kept forever: history, undo and restore
    are read from these rows (the Label table only holds the present)."""

    class Source(models.TextChoices):
        PAGE = "page", "Gallery or image page"
        API = "api", "API call"
        IMPORT = "import", "Import"
        RESTORE = "restore", "Restore or undo"

    image = models.ForeignKey(IonImage, on_delete=models.CASCADE, related_name="label_events")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", help_text="whose label changed"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="who made the change (an owner restoring, say)",
    )
    # None means "no label" (before the first label, or after a removal).
    value = models.CharField(max_length=1000, null=True, blank=True)
    unsure = models.BooleanField(default=False)
    previous = models.CharField(max_length=1000, null=True, blank=True)
    previous_unsure = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    at = models.DateTimeField(db_index=True)
    reverted = models.BooleanField(default=False, help_text="undone by its author (undo walks back past it)")

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["image", "-at"], name="label_event_by_image"),
            models.Index(fields=["user", "image", "at"], name="label_event_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.previous} -> {self.value} ({self.source})"


class Upload(models.Model):
    """One file being sent in parts (tus 1.0, webapp/ingestion/resumable.py). Its bytes live in
    MEDIA_ROOT/uploads/<id>.part until a dataset or import takes them; nothing else sees them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    length = models.BigIntegerField(help_text="declared size in bytes")
    offset = models.BigIntegerField(default=0, help_text="bytes received and checked so far")
    # CRC-32 of bytes [0, offset), kept as they arrive: the assembled file is verified against the
    # client's whole-file CRC-32 without reading it again.
    crc32 = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.filename} ({self.offset}/{self.length})"

    @property
    def path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "uploads" / f"{self.pk}.part"

    @property
    def complete(self) -> bool:
        return self.offset == self.length
