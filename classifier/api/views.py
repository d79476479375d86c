"""Model versions, training and scoring over REST."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import scoring, training
from classifier.models import ModelVersion
from webapp.datasets.api.serializers import JobStartedSerializer
from webapp.jobs.api.views import JobSerializer
from webapp.jobs.models import Job
from webapp.projects.access import project_for
from webapp.projects.models import Role


class ModelVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "number",
            "arch",
            "task",
            "classes",
            "params",
            "label_counts",
            "label_total",
            "label_hash",
            "dataset_count",
            "collections_used",
            "metrics",
            "notes",
            "is_active",
            "quick",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class TrainSerializer(serializers.Serializer):
    arch = serializers.ChoiceField(
        choices=["compact", "resnet50", "densenet121", "vgg16", "inceptionresnetv2"], default="compact"
    )
    folds = serializers.IntegerField(default=5, min_value=2, max_value=20)
    ensemble = serializers.IntegerField(default=1, min_value=1, max_value=10)
    epochs = serializers.IntegerField(required=False, min_value=1, max_value=500)
    context = serializers.BooleanField(default=False)


class ModelVersions(generics.ListAPIView):
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.none()  # for the schema; get_queryset scopes it
    pagination_class = None

    def get_queryset(self):
        return project_for(self.request.user, self.kwargs["slug"]).model_versions.select_related("created_by")


class ModelVersionDetail(generics.RetrieveAPIView):
    serializer_class = ModelVersionSerializer

    def get_object(self):
        project = project_for(self.request.user, self.kwargs["slug"])
        version = project.model_versions.filter(number=self.kwargs["number"]).first()
        if version is None:
            raise Http404("No such model version.")
        return version


class Activate(APIView):
    """Make this version the one that scores the project (roll forward or back); rescoring is queued."""

    @extend_schema(request=None, responses={202: ModelVersionSerializer})
    def post(self, request, slug: str, number: int):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        version = project.model_versions.filter(number=number).first()
        if version is None:
            raise Http404("No such model version.")
        with transaction.atomic():
            version.activate()
            scoring.start_scoring(project, request.user)
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class Deactivate(APIView):
    """Go back to the default (unsupervised + pretrained) score."""

    @extend_schema(request=None, responses={202: JobStartedSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        with transaction.atomic():
            ModelVersion.objects.deactivate_all(project)
            job = scoring.start_scoring(project, request.user)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


class Train(APIView):
    """Start training on every labelled image of the project; poll the returned job."""

    @extend_schema(request=TrainSerializer, responses={202: JobSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ser = TrainSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        if project.jobs.filter(kind=Job.Kind.TRAIN, status__in=Job.ACTIVE).exists():
            return Response(
                {"detail": "A model is already being trained for this project."},
                status=status.HTTP_409_CONFLICT,
            )
        run = training.start_training(project, request.user, dict(ser.validated_data))
        return Response(JobSerializer(run.job).data, status=status.HTTP_202_ACCEPTED)


class Predict(APIView):
    """Score every dataset of the project again with the active model (or the default score)."""

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        with transaction.atomic():
            job = scoring.start_scoring(project, request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
