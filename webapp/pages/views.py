"""Pages: project list, project page, datasets, galleries, review."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from webapp.projects.access import project_for
from webapp.projects.models import Project


@login_required
def home(request):
    projects = (
        Project.objects.for_user(request.user)
        .prefetch_related("memberships")
        .order_by("name")
    )
    rows = [(p, next(m.role for m in p.memberships.all() if m.user_id == request.user.id)) for p in projects]
    return render(request, "pages/home.html", {"rows": rows})


@login_required
def project_detail(request, slug: str):
    project = project_for(request.user, slug)
    return render(
        request,
        "pages/project.html",
        {
            "project": project,
            "memberships": project.memberships.select_related("user"),
        },
    )
