from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.jobs import services
from webapp.jobs.models import Job
from webapp.projects.access import check_project, project_for
from webapp.projects.models import Role


class JobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    stuck = serializers.BooleanField(
        read_only=True,
        help_text="Running without a heartbeat from its worker "
        "for a while, or never handed to the job queue: retry or cancel it.",
    )
    can_retry = serializers.SerializerMethodField()
    can_cancel = serializers.SerializerMethodField()
    eta_seconds = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="seconds left at the pace so far (null until known)"
    )
    eta_text = serializers.CharField(read_only=True, help_text='e.g. "about 3 min left"')

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "kind_display",
            "status",
            "progress",
            "percent",
            "message",
            "error",
            "target_id",
            "cancel_requested",
            "stuck",
            "can_retry",
            "can_cancel",
            "eta_seconds",
            "eta_text",
            "attempts",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_can_retry(self, job: Job) -> bool:
        """Whether the job is in a state that can be retried (annotators and owners may)."""
        return services.can_retry(job)

    def get_can_cancel(self, job: Job) -> bool:
        return services.can_cancel(job)


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
    """Stop a job: at once when it is queued or stuck, else at its next step (training: after
    the current epoch). A cancelled dataset processing leaves the dataset failed, to retry or delete."""

    @extend_schema(request=None, responses={200: JobSerializer})
    def post(self, request, pk: int):
        return act(services.cancel, request, pk)


class JobRetry(APIView):
    """Run a failed, cancelled, stuck or waiting job again from the start."""

    @extend_schema(request=None, responses={200: JobSerializer})
    def post(self, request, pk: int):
        return act(services.retry, request, pk)


def act(action, request, pk: int) -> Response:
    job = job_for(request.user, pk, need=Role.ANNOTATOR)
    try:
        job = action(job, request.user)
    except services.JobActionError as exc:
        raise ValidationError({"detail": str(exc)})
    job.refresh_from_db()
    return Response(JobSerializer(job).data)
