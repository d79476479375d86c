"""Project pages: creating projects, managing members and labelling keys, deleting."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.projects import services
from webapp.projects.access import project_for
from webapp.projects.forms import HotkeysForm, MemberForm, ProjectForm, RoleForm
from webapp.projects.models import Role


@login_required
@require_http_methods(["GET", "POST"])
def new_project(request):
    form = ProjectForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            project = form.save()
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Project '{project.name}' created.")
            return redirect(project)
    return render(request, "projects/new.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def members(request, slug: str):
    project = project_for(request.user, slug)
    is_owner = project.user_role == Role.OWNER
    form = MemberForm(request.POST or None, project=project)
    if request.method == "POST":
        project_for(request.user, slug, need=Role.OWNER)
        if form.is_valid():
            try:
                membership = form.save()
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"{membership.user.username} is now {membership.role}.")
                return redirect("projects:members", slug=slug)
    return render(
        request,
        "projects/members.html",
        {
            "project": project,
            "form": form,
            "is_owner": is_owner,
            "memberships": project.memberships.select_related("user"),
            "roles": Role.choices,
        },
    )


@login_required
@require_POST
def change_member(request, slug: str, membership_id: int):
    project = project_for(request.user, slug, need=Role.OWNER)
    membership = get_object_or_404(project.memberships, pk=membership_id)
    try:
        if request.POST.get("action") == "remove":
            services.remove_member(project, membership)
            messages.success(request, f"{membership.user.username} was removed from the project.")
        else:
            form = RoleForm(request.POST)
            if not form.is_valid():
                raise ValidationError("Choose owner, annotator or viewer.")
            services.set_member(project, membership.user.username, form.cleaned_data["role"])
            messages.success(request, f"{membership.user.username} is now {form.cleaned_data['role']}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("projects:members", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def delete_project(request, slug: str):
    project = project_for(request.user, slug, need=Role.OWNER)
    if request.method == "POST":
        if request.POST.get("confirm", "").strip() != project.slug:
            messages.error(request, "Type the project id exactly to confirm deletion.")
            return redirect("projects:delete", slug=slug)
        name = project.name
        project.delete()
        messages.success(request, f"Project '{name}' and all its data were deleted.")
        return redirect("home")
    return render(request, "projects/delete.html", {"project": project})


@login_required
@require_http_methods(["GET", "POST"])
def keys(request, slug: str):
    project = project_for(request.user, slug)
    is_owner = project.user_role == Role.OWNER
    form = HotkeysForm(request.POST or None, project=project)
    if request.method == "POST":
        project_for(request.user, slug, need=Role.OWNER)
        if form.is_valid():
            form.save()
            messages.success(request, "Labelling keys saved; the gallery uses them from now on.")
            return redirect("projects:keys", slug=slug)
    class_keys = [
        (label, key) for (_, label), key in zip(project.class_labels, project.class_keys, strict=True)
    ]
    return render(
        request,
        "projects/keys.html",
        {"project": project, "form": form, "is_owner": is_owner, "class_keys": class_keys},
    )
