"""Model versions, training runs and the predictions they make."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import models, transaction


class ModelVersionManager(models.Manager):
    def deactivate_all(self, project) -> None:
        """No version of `project` is active: it goes back to the default score."""
        self.filter(project=project, is_active=True).update(is_active=False)


class ModelVersion(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    arch = models.CharField(max_length=40)
    task = models.CharField(max_length=16)
    classes = models.JSONField(default=list)
    params = models.JSONField(default=dict)
    # The label set it learnt from: counts per class, total, and a hash to detect changes.
    label_counts = models.JSONField(default=dict)
    label_total = models.PositiveIntegerField(default=0)
    label_hash = models.CharField(max_length=64, blank=True)
    dataset_count = models.PositiveIntegerField(default=0)
    # Shared collections added as training data: [{"collection": id, "version": n, "name": ...}].
    collections_used = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict)
    notes = models.JSONField(default=list, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=False)
    # When the training labels were read: labels given after it are "since training".
    labels_at = models.DateTimeField(null=True, blank=True)
    # How held-out predictions were made: "groups" (folds by dataset) or "images" (one dataset,
    # stratified folds inside it); empty for versions trained before they were kept.
    held_out_by = models.CharField(max_length=16, blank=True)
    # A quick update (classifier.active): a linear head on the stored embeddings of a full
    # version (params["base"]) or of the shipped model (base None); a full training supersedes it.
    quick = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionManager()

    class Meta:
        ordering = ["project", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="one_number_per_version"),
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(is_active=True), name="one_active_version"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.number} ({self.arch})"

    @property
    def base_id(self) -> int | None:
        """The full version whose embeddings a quick version learnt from (None: the shipped model)."""
        return (self.params or {}).get("base") if self.quick else self.pk

    @property
    def path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "models" / str(self.project_id) / self.file_name

    @transaction.atomic
    def activate(self) -> None:
        """Make this the project's one active version (the others are deactivated first: a
        partial unique index allows one)."""
        ModelVersion.objects.filter(project_id=self.project_id, is_active=True).exclude(pk=self.pk).update(
            is_active=False
        )
        ModelVersion.objects.filter(pk=self.pk).update(is_active=True)
        self.is_active = True


class TrainingRun(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="training_runs")
    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="training_run")
    params = models.JSONField(default=dict)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training run {self.pk}"


class Prediction(models.Model):
    """Probabilities for one image from one model version (None: the default score)."""

    image = models.ForeignKey("datasets.IonImage", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="predictions"
    )
    probabilities = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="one_prediction_per_version"),
            models.UniqueConstraint(
                fields=["image"],
                condition=models.Q(model_version__isnull=True),
                name="one_default_prediction",
            ),
        ]

    def __str__(self) -> str:
        return f"prediction of image {self.image_id} by {self.model_version_id or 'default'}"


class DefaultCalibration(models.Model):
    """The project's fit of the default score to its labels (binary projects): a monotone
    calibration and a threshold, refitted when the labels change. Like a model version, its
    held-out predictions are cross-fitted (grouped by dataset) and kept as HeldOutScore rows."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="default_calibration"
    )
    calibration = models.JSONField(null=True, blank=True)
    thresholds = models.JSONField(default=list)
    label_hash = models.CharField(max_length=64)
    label_total = models.PositiveIntegerField(default=0)
    held_out_by = models.CharField(max_length=16, blank=True)
    labels_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"default calibration of {self.project_id}"


class HeldOutScoreManager(models.Manager):
    def store(
        self,
        version: ModelVersion | None,
        images: Sequence,
        probs: np.ndarray,
        thresholds: np.ndarray,
        fold_of: np.ndarray,
    ) -> None:
        """Keep each training image's label and out-of-fold prediction with the version (None: the
        default calibration). The project's images come first in the training arrays (shared
        collections follow), so `images` pairs with the first rows of `probs`."""
        self.bulk_create(
            [
                HeldOutScore(
                    image=im,
                    model_version=version,
                    label=im.consensus,
                    probabilities=[round(float(x), 6) for x in probs[i]],
                    thresholds=[round(float(x), 6) for x in thresholds[i]],
                    fold=int(fold_of[i]),
                )
                for i, im in enumerate(images)
            ],
            batch_size=1000,
        )


class HeldOutScore(models.Model):
    """One image labelled when a version was trained (None: when the default score was
    calibrated): its label then, and probabilities from a model that never saw a label of its
    dataset (out of fold), with the decision thresholds fitted without that fold."""

    image = models.ForeignKey("datasets.IonImage", on_delete=models.CASCADE, related_name="held_out_scores")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="held_out_scores"
    )
    label = models.CharField(max_length=1000)
    probabilities = models.JSONField()
    thresholds = models.JSONField()
    fold = models.IntegerField(default=0)

    objects = HeldOutScoreManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_version"], name="one_held_out_per_version"),
            models.UniqueConstraint(
                fields=["image"], condition=models.Q(model_version__isnull=True), name="one_default_held_out"
            ),
        ]

    def __str__(self) -> str:
        return f"held-out score of image {self.image_id} by {self.model_version_id or 'default'}"
