"""Pages: project list, project page, datasets, galleries, image detail, review."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_safe

from classifier.evaluation import ReviewError
from webapp.datasets.access import dataset_for, image_for
from webapp.pages import services
from webapp.projects.access import project_for
from webapp.projects.models import Project


@login_required
@require_safe
def home(request):
    projects = Project.objects.for_user(request.user).prefetch_related("memberships").order_by("name")
    rows = [(p, next(m.role for m in p.memberships.all() if m.user_id == request.user.id)) for p in projects]
    return render(request, "pages/home.html", {"rows": rows})


@login_required
@require_safe
def project_detail(request, slug: str):
    project = project_for(request.user, slug)
    return render(request, "pages/project.html", services.project_context(project, request.user))


@login_required
@require_safe
def dataset_detail(request, pk: int):
    ds = dataset_for(request.user, pk)
    ctx = {
        "dataset": ds,
        "project": ds.project,
        "facts": services.dataset_facts(ds),
        "instrument": services.instrument_rows(ds),
        "figures": services.dataset_figures(ds),
        "can_label": services.can_label(ds.project),
        "is_owner": ds.project.user_role == "owner",
        "job_row": services.dataset_job(ds),
    }
    return render(request, "pages/dataset.html", ctx)


@login_required
@require_safe
def dataset_gallery(request, pk: int):
    ds = dataset_for(request.user, pk)
    return render(
        request,
        "pages/gallery.html",
        {
            "project": ds.project,
            "dataset": ds,
            "config": services.gallery_config(ds.project, request.user, ds),
        },
    )


@login_required
@require_safe
def project_gallery(request, slug: str):
    project = project_for(request.user, slug)
    return render(
        request,
        "pages/gallery.html",
        {"project": project, "dataset": None, "config": services.gallery_config(project, request.user, None)},
    )


@login_required
@require_safe
def image_detail(request, pk: int):
    image = image_for(request.user, pk)
    return render(request, "pages/image.html", services.image_context(image, request.user))


@login_required
@require_safe
def review(request, slug: str):
    project = project_for(request.user, slug)
    try:
        ctx = services.review_context(project, request.GET.get("a"), request.GET.get("b"))
    except ReviewError as exc:
        return HttpResponseBadRequest(str(exc))
    return render(request, "pages/review.html", ctx)


@login_required
@require_http_methods(["GET", "POST"])
def import_images(request, slug: str):
    """Upload a .zip of images; the import runs as a job shown on the project page."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from webapp.ingestion.forms import ImportForm

    project = project_for(request.user, slug, need="annotator")
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        form.picture_import.start(project, request.user)
        name = form.cleaned_data["archive"].name
        messages.success(request, f"'{name}' uploaded; the import is running (see Running jobs).")
        return redirect(project)
    return render(request, "pages/import.html", {"project": project, "form": form})
