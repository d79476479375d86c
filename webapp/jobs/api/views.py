from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.jobs.models import Job
from webapp.projects.access import check_project, project_for
from webapp.projects.models import Role


class JobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = Job
        fields = ["id", "kind", "kind_display", "status", "progress", "percent", "message", "error", "target_id",
                  "cancel_requested", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class ProjectJobs(generics.ListAPIView):
    """A project's jobs, newest first; `?active=1` for the running and queued ones."""

    serializer_class = JobSerializer
    queryset = Job.objects.none()  # for the schema; get_queryset scopes it
    pagination_class = None

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["slug"])
        qs = project.jobs.all()
        if self.request.query_params.get("active"):
            qs = qs.filter(status__in=Job.ACTIVE)
        return qs[:50]


def job_for(user, pk, need: str = Role.VIEWER) -> Job:
    job = Job.objects.select_related("project").filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    check_project(user, job.project, need)
    return job


class JobDetail(generics.RetrieveAPIView):
    serializer_class = JobSerializer

    def get_object(self):
        return job_for(self.request.user, self.kwargs["pk"])


class JobCancel(APIView):
    """Ask a running job to stop (training stops after the current epoch)."""

    @extend_schema(request=None, responses={200: JobSerializer})
    def post(self, request, pk: int):
        job = job_for(request.user, pk, need=Role.ANNOTATOR)
        if job.is_active:
            Job.objects.filter(pk=job.pk).update(cancel_requested=True)
            if job.status == Job.Status.QUEUED:
                job.cancelled()
        job.refresh_from_db()
        return Response(JobSerializer(job).data)
