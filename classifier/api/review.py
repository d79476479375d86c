"""Review endpoints: held-out, since-training and training-fit accuracy, and annotator agreement."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import evaluation
from classifier.models import ModelVersion
from webapp.projects.access import project_for
from webapp.projects.models import Project


class MeasureSerializer(serializers.Serializer):
    """One measure: for the first class of binary projects (off-sample), macro-averaged otherwise.
    Values are null where undefined (no labels, or a class never labelled nor predicted)."""

    n = serializers.IntegerField(help_text="labelled images measured")
    f1 = serializers.FloatField(allow_null=True)
    f1_ci = serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        allow_null=True,
        help_text="95% interval [low, high]",
    )
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    accuracy = serializers.FloatField(allow_null=True)
    auc = serializers.FloatField(allow_null=True, help_text="ROC AUC")


class MeasuresSerializer(serializers.Serializer):
    held_out = MeasureSerializer(
        help_text="images labelled at training time, scored by models that never saw "
        "a label of their dataset (out-of-fold predictions)"
    )
    since_training = MeasureSerializer(
        help_text="labels given or changed after training, scored by this version"
    )
    training_fit = MeasureSerializer(help_text="the labels this version learnt from: optimistic")


class DatasetAccuracySerializer(MeasuresSerializer):
    dataset_id = serializers.IntegerField()
    dataset = serializers.CharField()

    class Meta:
        fields = ["dataset_id", "dataset", "held_out", "since_training", "training_fit"]

    def get_fields(self):
        fields = super().get_fields()
        return {name: fields[name] for name in self.Meta.fields}


class AccuracySerializer(serializers.Serializer):
    version = serializers.CharField(help_text="model number, or 'default' for the default score")
    classes = serializers.ListField(child=serializers.CharField())
    all = MeasuresSerializer(help_text="over every dataset of the project")
    datasets = DatasetAccuracySerializer(many=True)


def accuracy_payload(project: Project, version: ModelVersion | None, dataset_id: int | None = None) -> dict:
    """The review contract: the same object for the API and `manage.py review_accuracy --json`."""
    data = AccuracySerializer(evaluation.accuracy(project, version, dataset_id)).data
    return _plain(data)


def _plain(o):
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_plain(v) for v in o]
    return o


class Review(APIView):
    """Accuracy of one model version (`version=N`, `default`, or the active one), per dataset
    and over the project: held out (headline), since training, and training fit (optimistic)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "version",
                str,
                description="model number, or 'default'; default: the active version, else the default score",
            ),
            OpenApiParameter("dataset", int, description="only this dataset in `datasets`"),
        ],
        responses={200: AccuracySerializer},
    )
    def get(self, request, slug: str):
        project = project_for(request.user, slug)
        try:
            version = evaluation.resolve_version(project, request.query_params.get("version"))
        except evaluation.ReviewError as exc:
            raise ValidationError({"version": [str(exc)]}) from None
        dataset_id = None
        if request.query_params.get("dataset"):
            try:
                dataset_id = int(request.query_params["dataset"])
            except ValueError:
                raise ValidationError({"dataset": ["Give a dataset id."]}) from None
            if not project.datasets.filter(pk=dataset_id).exists():
                raise Http404("No such dataset in this project.")
        return Response(accuracy_payload(project, version, dataset_id))


class PairAgreementSerializer(serializers.Serializer):
    common = serializers.IntegerField(help_text="images both annotators labelled")
    kappa = serializers.FloatField(allow_null=True, help_text="Cohen's kappa on those images")
    agreement = serializers.FloatField(allow_null=True)


class AnnotatorSerializer(serializers.Serializer):
    user = serializers.CharField()
    labels = serializers.IntegerField()
    model_compared = serializers.IntegerField(help_text="labels on images the model has scored")
    model_agreement = serializers.FloatField(allow_null=True)
    pairs = serializers.DictField(child=PairAgreementSerializer(), help_text="by the other annotator's name")


class AnnotatorsSerializer(serializers.Serializer):
    names = serializers.ListField(child=serializers.CharField())
    annotators = AnnotatorSerializer(many=True)


class Annotators(APIView):
    """Per annotator: label count, Cohen's kappa with each other annotator, agreement with the model."""

    @extend_schema(responses={200: AnnotatorsSerializer})
    def get(self, request, slug: str):
        project = project_for(request.user, slug)
        return Response(evaluation.annotators(project))
