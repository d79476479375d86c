from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import F
from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError as APIValidationError
from rest_framework.response import Response

from webapp.projects import services
from webapp.projects.access import project_for
from webapp.projects.api.serializers import MembershipSerializer, ProjectSerializer, RoleSerializer
from webapp.projects.models import Project, Role


def as_api_error(exc: ValidationError) -> APIValidationError:
    return APIValidationError({"detail": " ".join(exc.messages)})


class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's projects; other projects answer 404."""

    serializer_class = ProjectSerializer
    lookup_field = "slug"
    queryset = Project.objects.none()

    def get_queryset(self):
        return (
            Project.objects.for_user(self.request.user)
            .annotate(user_role=F("memberships__role"))
            .filter(memberships__user=self.request.user)
        )

    def get_object(self) -> Project:
        need = Role.OWNER if self.request.method == "DELETE" else Role.VIEWER
        return project_for(self.request.user, self.kwargs["slug"], need=need)

    def perform_create(self, serializer) -> None:
        d = serializer.validated_data
        try:
            serializer.instance = services.create_project(
                self.request.user,
                d["name"],
                slug=d.get("slug"),
                description=d.get("description", ""),
                task=d.get("task", "binary"),
                classes=d.get("classes"),
                channels=d.get("channels"),
            )
        except ValidationError as exc:
            raise as_api_error(exc) from None
        serializer.instance.user_role = Role.OWNER


class MembershipViewSet(viewsets.ModelViewSet):
    """Members of one project; owners change them, every member may list them."""

    serializer_class = MembershipSerializer
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete"]
    queryset = Project.objects.none()

    def project(self, need: str = Role.VIEWER) -> Project:
        return project_for(self.request.user, self.kwargs["project_slug"], need=need)

    def get_queryset(self):
        need = Role.VIEWER if self.request.method == "GET" else Role.OWNER
        return self.project(need).memberships.select_related("user")

    def create(self, request, *args, **kwargs):
        project = self.project(Role.OWNER)
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            m = services.set_member(project, ser.validated_data["user"], ser.validated_data["role"])
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(self.get_serializer(m).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        project = self.project(Role.OWNER)
        m = get_object_or_404(project.memberships, pk=kwargs["pk"])
        ser = RoleSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            m = services.set_member(project, m.user.username, ser.validated_data["role"])
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(self.get_serializer(m).data)

    def destroy(self, request, *args, **kwargs):
        project = self.project(Role.OWNER)
        m = get_object_or_404(project.memberships, pk=kwargs["pk"])
        try:
            services.remove_member(project, m)
        except ValidationError as exc:
            raise as_api_error(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
