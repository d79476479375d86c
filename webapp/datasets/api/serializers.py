from __future__ import annotations

from rest_framework import serializers

from webapp.datasets import media
from webapp.datasets.models import Dataset, IonImage


class DatasetSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    job = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "status",
            "progress",
            "error",
            "params",
            "metadata",
            "height",
            "width",
            "channels",
            "image_count",
            "created_at",
            "job",
        ]
        read_only_fields = fields

    def get_job(self, ds: Dataset) -> int | None:
        job = (
            ds.project.jobs.filter(target_id=ds.pk, kind__in=["ingest", "import"])
            .order_by("-created_at")
            .first()
        )
        return job.pk if job else None


class ImageSerializer(serializers.ModelSerializer):
    probabilities = serializers.SerializerMethodField()
    label = serializers.CharField(source="consensus", allow_null=True, read_only=True)
    my_label = serializers.SerializerMethodField()
    my_unsure = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    model_version = serializers.IntegerField(
        source="prediction_version.number", read_only=True, allow_null=True
    )

    class Meta:
        model = IonImage
        fields = [
            "id",
            "dataset",
            "dataset_name",
            "index",
            "mz",
            "name",
            "formula",
            "adduct",
            "probability",
            "probabilities",
            "predicted",
            "uncertainty",
            "label",
            "my_label",
            "my_unsure",
            "label_count",
            "users_disagree",
            "model_version",
            "thumbnail_url",
        ]
        read_only_fields = fields

    def to_representation(self, im: IonImage) -> dict:
        # The same JSON as the declared fields give (tests/datasets/test_api.py compares them),
        # built directly: field by field through DRF was half the time of a 100-image page.
        if hasattr(im, "model_version_number"):  # a gallery.ListingRow: columns, not related objects
            version, dataset_name = im.model_version_number, im.dataset_name
        else:
            version = im.prediction_version.number if im.prediction_version_id is not None else None
            dataset_name = im.dataset.name
        return {
            "id": im.pk,
            "dataset": im.dataset_id,
            "dataset_name": dataset_name,
            "index": im.index,
            "mz": _float(im.mz),
            "name": im.name,
            "formula": im.formula,
            "adduct": im.adduct,
            "probability": _float(im.probability),
            "probabilities": self.get_probabilities(im),
            "predicted": im.predicted,
            "uncertainty": _float(im.uncertainty),
            "label": im.consensus,
            "my_label": self.get_my_label(im),
            "my_unsure": self.get_my_unsure(im),
            "label_count": im.label_count,
            "users_disagree": im.users_disagree,
            "model_version": version,
            "thumbnail_url": self.get_thumbnail_url(im),
        }

    def get_probabilities(self, im: IonImage) -> dict[str, float] | None:
        if im.probabilities is None:
            return None
        return dict(zip(self.context["classes"], im.probabilities, strict=False))

    def get_my_label(self, im: IonImage) -> str | list[str] | None:
        value = getattr(im, "my_label", None)
        if value is None:
            return None
        return value.split() if self.context.get("multilabel") else value

    def get_my_unsure(self, im: IonImage) -> bool:
        return bool(getattr(im, "my_unsure", False))

    def get_thumbnail_url(self, im: IonImage) -> str:
        # Signed: served without a permission query (webapp/datasets/media.py); the caller's
        # access was checked when this listing was served.
        revision = im.dataset_revision if hasattr(im, "dataset_revision") else im.dataset.revision
        return media.signed_thumbnail_url(im.dataset_id, im.index, revision)


def _float(value) -> float | None:
    return None if value is None else float(value)


class LabelSerializer(serializers.Serializer):
    label = serializers.JSONField(
        required=False, help_text='a class name, e.g. "off"; a list for multi-label'
    )
    unsure = serializers.BooleanField(default=False, help_text="mark the image as unsure instead")


# Select-all in the gallery sends every matching image in one action (one undo step).
MAX_BULK = 50_000


class BulkLabelSerializer(LabelSerializer):
    images = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=MAX_BULK
    )
    remove = serializers.BooleanField(default=False)
    mode = serializers.ChoiceField(
        choices=["set", "add", "remove"],
        default="set",
        help_text="multi-label projects: 'add' or 'remove' one class, keeping each image's other classes",
    )


# Response shapes, so that the OpenAPI schema (and clients generated from it) is typed.
class CountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    labelled = serializers.IntegerField()
    unlabelled = serializers.IntegerField()
    disagreement = serializers.IntegerField(
        help_text="labelled images whose prediction differs from the label"
    )
    users_disagree = serializers.IntegerField()
    scored = serializers.IntegerField()
    labelled_by_me = serializers.IntegerField()
    labelled_by_others = serializers.IntegerField()
    predicted = serializers.DictField(
        child=serializers.IntegerField(), help_text="images predicted as each class"
    )
    label = serializers.DictField(
        child=serializers.IntegerField(), help_text="images whose consensus is each class"
    )


class BulkLabelResultSerializer(serializers.Serializer):
    labelled = serializers.IntegerField(required=False, help_text="images labelled (mode 'set')")
    label = serializers.JSONField(required=False, help_text="the label stored")
    removed = serializers.IntegerField(required=False, help_text="labels removed (remove: true)")
    changed = serializers.IntegerField(required=False, help_text="labels changed (mode 'add' or 'remove')")
    mode = serializers.CharField(required=False)


class JobStartedSerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="the job's id: follow it at /api/jobs/{id}/")


class SpectrumSerializer(serializers.Serializer):
    mz = serializers.ListField(child=serializers.FloatField())
    intensity = serializers.ListField(child=serializers.FloatField())
