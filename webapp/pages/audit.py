"""The project's label audit page: every label change, and restore for owners."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from webapp.datasets import label_history
from webapp.datasets.forms import RestoreLabelsForm
from webapp.projects.access import project_for
from webapp.projects.models import Role


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def label_audit(request, slug: str):
    project = project_for(request.user, slug)
    is_owner = project.user_role == Role.OWNER
    form = RestoreLabelsForm(request.POST or None, project=project)
    if request.method == "POST":
        project_for(request.user, slug, need=Role.OWNER)
        if form.is_valid():
            n = form.save(actor=request.user)
            messages.success(
                request,
                f"{n} labels changed back. The restore is in the history below and can itself be restored.",
            )
            return redirect("pages:label_audit", slug=slug)
    who = request.GET.get("user") or None
    events = label_history.for_project(project)
    if who:
        events = events.filter(user__username=who)
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    return render(
        request,
        "pages/label_audit.html",
        {"project": project, "page": page, "form": form, "is_owner": is_owner, "who": who},
    )
