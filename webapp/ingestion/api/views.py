"""Uploads and imports in one request (multipart), and processing a dataset again; the
resumable (tus) routes are in uploads.py. Every check is a services or forms function."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets.access import dataset_for
from webapp.datasets.api.serializers import DatasetSerializer, JobStartedSerializer
from webapp.datasets.models import Dataset
from webapp.ingestion import services
from webapp.ingestion.api.serializers import DatasetUploadSerializer, ImportSerializer
from webapp.ingestion.forms import checked_import
from webapp.projects.access import project_for
from webapp.projects.models import Project, Role


def refused(exc: Exception) -> ValidationError:
    """A refused upload as the API says it: {"detail": "<sentence>"}, status 400."""
    return ValidationError({"detail": services.sentence(str(exc))})


class ProjectDatasets(generics.ListCreateAPIView):
    """A project's datasets; POST uploads an imzML + ibd pair (multipart) and starts processing."""

    serializer_class = DatasetSerializer
    queryset = Dataset.objects.none()  # for the schema; get_queryset scopes it
    parser_classes = [MultiPartParser, FormParser]
    pagination_class = None

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["slug"])
        return project.datasets.select_related("project")

    @extend_schema(request=DatasetUploadSerializer, responses={202: DatasetSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ser = DatasetUploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            dataset = upload(project, request.user, ser.validated_data)
        except services.UploadError as exc:
            raise refused(exc) from None
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)


def upload(project: Project, user, d: dict) -> Dataset:
    imzml, ibd, mz_list = d["imzml"], d.get("ibd"), d.get("mz_list")
    total = sum(f.size for f in (imzml, ibd, mz_list) if f is not None)
    services.check_imzml_upload(imzml.name, ibd.name if ibd else None, total)
    return services.dataset_from_upload(project, user, {"imzml": imzml, "ibd": ibd, "mz_list": mz_list}, d)


class DatasetReprocess(APIView):
    @extend_schema(request=None, responses={202: DatasetSerializer})
    def post(self, request, pk: int):
        dataset = dataset_for(request.user, pk, need=Role.ANNOTATOR)
        if dataset.kind != Dataset.Kind.IMZML:
            raise ValidationError({"detail": "Only MSI datasets can be processed again."})
        with transaction.atomic():
            services.start_ingestion(dataset, request.user)
        dataset.refresh_from_db()
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)


class ProjectImports(APIView):
    """Upload a .zip of images; the import runs as a job (all or nothing)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportSerializer, responses={202: JobStartedSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ser = ImportSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        try:
            picture_import = checked_import(d["archive"], d.get("layout"), d.get("labels"), d.get("channels"))
        except services.UploadError as exc:
            raise refused(exc) from None
        job = picture_import.start(project, request.user)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)
