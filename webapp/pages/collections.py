"""Collection pages: list, create from a project, share, snapshot, use for training."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.collections import services
from webapp.collections.access import collection_for
from webapp.collections.forms import CollectionForm, ShareForm, UseForm
from webapp.projects.access import project_for
from webapp.projects.models import Role


@login_required
@require_GET
def collection_list(request):
    return render(request, "collections/list.html", services.grouped_for(request.user))


@login_required
@require_GET
def collection_detail(request, pk: int):
    collection = collection_for(request.user, pk)
    is_owner = collection.owner_id == request.user.pk
    return render(
        request,
        "collections/detail.html",
        {
            "collection": collection,
            "is_owner": is_owner,
            "versions": collection.versions.all(),
            "share_form": ShareForm(initial={"public": collection.public}),
            "shared_with": collection.shared_with.all(),
            "uses": collection.uses.select_related("project") if is_owner else [],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def new_collection(request, slug: str):
    # Freezing a snapshot creates data on the server: annotators and owners only.
    project = project_for(request.user, slug, need=Role.ANNOTATOR)
    form = CollectionForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        images = services.ready_images(project, form.cleaned_data["datasets"])
        try:
            collection = services.create_collection(
                project, request.user, form.cleaned_data["name"], images, form.cleaned_data["description"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"Collection '{collection.name}' created with "
                f"{collection.latest.item_count} labelled images.",
            )
            return redirect("collections:detail", pk=collection.pk)
    return render(request, "collections/new.html", {"project": project, "form": form})


@login_required
@require_POST
def share(request, pk: int):
    collection = collection_for(request.user, pk, owner=True)
    form = ShareForm(request.POST)
    if form.is_valid():
        try:
            added = services.share(collection, form.cleaned_users(), form.cleaned_data["public"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, "Shared with " + ", ".join(added) + "." if added else "Sharing updated."
            )
    return redirect("collections:detail", pk=pk)


@login_required
@require_POST
def revoke(request, pk: int):
    collection = collection_for(request.user, pk, owner=True)
    services.revoke(collection, request.POST.get("user", ""))
    messages.success(request, "Access removed.")
    return redirect("collections:detail", pk=pk)


@login_required
@require_POST
def snapshot(request, pk: int):
    collection = collection_for(request.user, pk, owner=True)
    if collection.source_project is None:
        messages.error(request, "The project this collection came from no longer exists.")
        return redirect("collections:detail", pk=pk)
    project = project_for(request.user, collection.source_project.slug)
    images = services.ready_images(project)
    try:
        version = services.snapshot(collection, request.user, images, request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Version {version.number} saved ({version.item_count} images).")
    return redirect("collections:detail", pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
def training_collections(request, slug: str):
    project = project_for(request.user, slug)
    visible = services.usable_for(request.user, project)
    form = UseForm(request.POST or None, choices=[(c.pk, f"{c.name} ({c.owner.username})") for c in visible])
    if request.method == "POST":
        project_for(request.user, slug, need=Role.ANNOTATOR)
        if request.POST.get("remove"):
            services.stop_using(project, request.POST["remove"])
            messages.success(request, "The collection is no longer used for training.")
            return redirect("collections:training", slug=slug)
        if form.is_valid():
            try:
                services.use_for_training(
                    project, collection_for(request.user, form.cleaned_data["collection"]), request.user
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "The next training run will include this collection.")
                return redirect("collections:training", slug=slug)
    return render(
        request,
        "collections/training.html",
        {
            "project": project,
            "form": form,
            "uses": project.training_collections.select_related("collection__owner", "pinned_version"),
            "can_label": project.user_role in (Role.OWNER, Role.ANNOTATOR),
        },
    )
