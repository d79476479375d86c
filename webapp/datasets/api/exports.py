"""Downloads as jobs: POST starts one (progress and time left on the job), GET fetches it."""

from __future__ import annotations

from django.http import FileResponse, Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets import export_jobs
from webapp.datasets.api.serializers import JobStartedSerializer
from webapp.datasets.export import LAYOUTS, ExportError
from webapp.jobs.models import Job
from webapp.projects.access import check_project, project_for
from webapp.projects.models import Role


class ExportRequestSerializer(serializers.Serializer):
    dataset = serializers.IntegerField(required=False, allow_null=True, help_text="one dataset; omit for all")
    layout = serializers.ChoiceField(choices=LAYOUTS, required=False, allow_null=True)
    labelled_only = serializers.BooleanField(default=False)
    arrays = serializers.BooleanField(default=False, help_text="add each dataset's ion_images.npy")


class ProjectExports(APIView):
    """Prepare a .zip of the project (or of one dataset) in the import layouts, as a job."""

    @extend_schema(request=ExportRequestSerializer, responses={202: JobStartedSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug)  # viewers may download what they can see
        ser = ExportRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        dataset = None
        if d.get("dataset"):
            dataset = project.datasets.filter(pk=d["dataset"]).first()
            if dataset is None:
                raise Http404("No such dataset in this project.")
        try:
            job = export_jobs.start_export(
                project,
                request.user,
                dataset,
                d.get("layout"),
                labelled_only=d["labelled_only"],
                with_arrays=d["arrays"],
            )
        except ExportError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


class ExportDownload(APIView):
    """The prepared .zip, once its job is done."""

    @extend_schema(responses={(200, "application/zip"): bytes})
    def get(self, request, pk: int):
        job = Job.objects.select_related("project").filter(pk=pk, kind=Job.Kind.EXPORT).first()
        if job is None:
            raise Http404("No such download.")
        check_project(request.user, job.project, Role.VIEWER)
        path = export_jobs.export_path(job)
        if job.status != Job.Status.DONE:
            return Response(
                {
                    "detail": f"The download is not ready yet ({job.get_status_display().lower()}, "
                    f"{job.percent}%)."
                },
                status=status.HTTP_409_CONFLICT,
            )
        if not path.exists():
            raise Http404(
                "This download was prepared more than two days ago and has been deleted: prepare it again."
            )
        return FileResponse(
            open(path, "rb"),
            as_attachment=True,  # noqa: SIM115 - FileResponse closes it
            filename=export_jobs.download_name(job),
            content_type="application/zip",
        )
