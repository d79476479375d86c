"""Every app's API routes, collected under /api/."""
from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from webapp.projects.api.views import MembershipViewSet, ProjectViewSet

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")

members = DefaultRouter(trailing_slash=True)
members.register("members", MembershipViewSet, basename="member")

urlpatterns = [
    path("", include(router.urls)),
    path("projects/<slug:project_slug>/", include(members.urls)),
]
