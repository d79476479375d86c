"""Data shaping for the pages: rows for tables, settings for the page scripts, review pairs."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from classifier import evaluation
from classifier.models import ModelVersion
from ionsieve_core.imaging import colormaps
from ionsieve_core.imaging.colormaps import lut_8bit
from webapp.datasets.models import Dataset, IonImage
from webapp.jobs import services as job_services
from webapp.jobs.models import Job
from webapp.pages import figure_data, figures
from webapp.projects.access import role_allows
from webapp.projects.models import Project, Role, Task

# Colours a microscopy channel can be shown in on the image page (name, #rrggbb).
CHANNEL_CHOICES = [
    ["red", "#ff0000"],
    ["green", "#00ff00"],
    ["blue", "#0000ff"],
    ["yellow", "#ffff00"],
    ["cyan", "#00ffff"],
    ["magenta", "#ff00ff"],
    ["grey", "#ffffff"],
]

ARCHS = [
    ("compact", "Compact CNN (fast, small data)"),
    ("resnet50", "ResNet-50 (pretrained)"),
    ("densenet121", "DenseNet-121 (pretrained)"),
    ("vgg16", "VGG-16 (pretrained)"),
    ("inceptionresnetv2", "Inception-ResNet v2 (pretrained)"),
]
# Tile colours per class, in class order; binary projects use the off/on colours.
# Dark enough for white text on them and for WCAG AA contrast on white (4.5:1 or more).
CLASS_COLOURS = [
    "#c2410c",
    "#237a3b",
    "#1864ab",
    "#862e9c",
    "#a65f00",
    "#0b7285",
    "#4d7c0f",
    "#a61e4d",
    "#495057",
]


def can_label(project: Project) -> bool:
    return role_allows(project.user_role, Role.ANNOTATOR)


def headline(metrics: dict | None, *names: str) -> float | None:
    """The first number found under one of `names`, at the top level or under 'overall'."""
    metrics = metrics or {}
    for scope in (metrics.get("overall"), metrics):
        if isinstance(scope, dict):
            for n in names:
                v = scope.get(n)
                if isinstance(v, int | float):
                    return float(v)
    return None


def version_rows(project: Project) -> list[dict]:
    return [
        {
            "v": v,
            "f1": headline(v.metrics, "f1", "f1_macro", "macro_f1"),
            "roc_auc": headline(v.metrics, "roc_auc", "auc", "roc_auc_macro"),
        }
        for v in project.model_versions.select_related("created_by")
    ]


def project_context(project: Project, user) -> dict:
    datasets = list(project.datasets.all())
    versions = version_rows(project)
    return {
        "project": project,
        "datasets": datasets,
        "can_label": can_label(project),
        "is_owner": project.user_role == Role.OWNER,
        "versions": versions,
        # From the rows in hand: one query less than asking for it.
        "active_version": next((row["v"] for row in versions if row["v"].is_active), None),
        "jobs": job_rows(project.jobs.filter(status__in=Job.ACTIVE)[:20]),
        "problem_jobs": problem_jobs(project),
        "archs": ARCHS,
        "memberships": project.memberships.select_related("user"),
        "training_collection_count": project.training_collections.count(),
        "config": {"slug": project.slug, "canLabel": can_label(project)},
    }


def job_rows(jobs) -> list[dict]:
    """Each job with what a member may do about it (the template shows buttons to annotators)."""
    return [
        {
            "job": j,
            "stuck": j.is_stuck(),
            "retry": job_services.can_retry(j),
            "cancel": job_services.can_cancel(j),
        }
        for j in jobs
    ]


def problem_jobs(project: Project) -> list[dict]:
    """Jobs that failed or were cancelled in the last day and were not run again since."""
    since = timezone.now() - timedelta(days=1)
    ended = project.jobs.filter(status__in=[Job.Status.FAILED, Job.Status.CANCELLED], finished_at__gte=since)
    return job_rows(ended[:5])


def dataset_job(ds: Dataset) -> dict | None:
    """The dataset's latest processing job, unless it simply succeeded."""
    job = Job.objects.filter(kind=Job.Kind.INGEST, target_id=ds.pk).order_by("-created_at", "-pk").first()
    if job is None or (job.status == Job.Status.DONE and ds.is_ready):
        return None
    return job_rows([job])[0]


def class_config(project: Project) -> list[dict]:
    keys = project.class_keys
    return [
        {"name": c, "label": label, "colour": CLASS_COLOURS[i % len(CLASS_COLOURS)], "key": keys[i]}
        for i, (c, label) in enumerate(project.class_labels)
    ]


def gallery_config(project: Project, user, dataset: Dataset | None) -> dict:
    if dataset is not None:
        images, counts = (
            reverse("dataset-images", args=[dataset.pk]),
            reverse("dataset-image-counts", args=[dataset.pk]),
        )
        ids = reverse("dataset-image-ids", args=[dataset.pk])
    else:
        images = reverse("project-images", args=[project.slug])
        counts = reverse("project-image-counts", args=[project.slug])
        ids = reverse("project-image-ids", args=[project.slug])
    return {
        "slug": project.slug,
        "dataset": dataset.pk if dataset else None,
        "imagesUrl": images,
        "countsUrl": counts,
        "idsUrl": ids,
        "bulkUrl": reverse("project-bulk-labels", args=[project.slug]),
        "undoUrl": reverse("project-labels-undo", args=[project.slug]),
        "classes": class_config(project),
        "multilabel": project.task == Task.MULTILABEL,
        "binary": project.task == Task.BINARY,
        "canLabel": can_label(project),
        "me": user.username,
        # Label next (classifier.active): the queue and the cheap endpoint polled for new scores.
        "nextUrl": reverse("dataset-next", args=[dataset.pk])
        if dataset
        else reverse("project-next", args=[project.slug]),
        "liveUrl": reverse("project-live", args=[project.slug]),
    }


def dataset_facts(ds: Dataset) -> list[tuple[str, str]]:
    m = ds.metadata or {}
    facts = [
        ("Status", ds.get_status_display()),
        ("Kind", ds.get_kind_display()),
        ("Images", f"{ds.image_count:,}"),
    ]
    if ds.height and ds.width:
        facts.append(("Pixel grid", f"{ds.height} × {ds.width}"))
    if m.get("spectra"):
        facts.append(("Spectra", f"{m['spectra']:,}"))
    mz = m.get("mz_range")
    if isinstance(mz, list) and len(mz) == 2 and all(isinstance(x, int | float) for x in mz):
        facts.append(("m/z range", f"{mz[0]:.4f} – {mz[1]:.4f}"))
    for key, name in (
        ("storage", "Storage"),
        ("spectrum_type", "Spectrum type"),
        ("ion_source", "Ions imaged"),
        ("ppm", "Tolerance (ppm)"),
        ("tic_normalised", "TIC normalised"),
    ):
        if key in m:
            facts.append((name, str(m[key])))
    return facts


def instrument_rows(ds: Dataset) -> list[tuple[str, str]]:
    inst = (ds.metadata or {}).get("instrument")
    if isinstance(inst, dict):
        return [(str(k), str(v)) for k, v in inst.items() if v not in (None, "")]
    return [("Instrument", str(inst))] if inst else []


def dataset_figures(ds: Dataset) -> dict[str, str]:
    """URLs of the dataset's figures: the page fetches them (figure_data.py, cached per revision)."""
    return figure_data.dataset_figure_urls(ds)


def image_context(image: IonImage, user) -> dict:
    ds, project = image.dataset, image.dataset.project
    labels = {c: label for c, label in project.class_labels}
    figs = figure_data.image_figure_urls(image)
    everyone = list(image.labels.select_related("user").order_by("user__username"))
    # The caller's own label is among everyone's: no query of its own.
    mine = next((label for label in everyone if label.user_id == user.pk), None)
    return {
        "image": image,
        "dataset": ds,
        "project": project,
        "figures": figs,
        "labels": everyone,
        "probabilities": [
            (labels[c], p) for c, p in zip(project.classes, image.probabilities or [], strict=False)
        ],
        "neighbours": neighbours(image),
        "predicted_label": " + ".join(labels.get(c, c) for c in image.predicted.split()),
        "config": {
            "image": image.pk,
            "dataset": ds.pk,
            "slug": project.slug,
            "classes": class_config(project),
            "multilabel": project.task == Task.MULTILABEL,
            "canLabel": can_label(project),
            "myLabel": mine.classes if mine and not mine.unsure else [],
            "myUnsure": bool(mine and mine.unsure),
            # The same 256-entry tables as the thumbnails (ionsieve_core/imaging/colormaps.py), as hex.
            "colormaps": {name: lut_8bit(name).tobytes().hex() for name in colormaps.NAMES},
            "channelColours": CHANNEL_CHOICES,
        },
        "multichannel": ds.channels > 1,
    }


def neighbours(image: IonImage) -> dict:
    """Previous and next image by index; the page script swaps in the gallery's own order."""
    qs = IonImage.objects.filter(dataset_id=image.dataset_id)
    prev = qs.filter(index__lt=image.index).order_by("-index").values_list("pk", flat=True).first()
    nxt = qs.filter(index__gt=image.index).order_by("index").values_list("pk", flat=True).first()
    return {"prev": prev, "next": nxt}


# ---------------------------------------------------------------- review
def default_pair(project: Project) -> tuple[str, str]:
    """Active vs previous version; with one version, it vs the default score."""
    versions = list(project.model_versions.order_by("-number").values_list("number", "is_active"))
    if not versions:
        return evaluation.DEFAULT, ""
    active = next((n for n, a in versions if a), versions[0][0])
    older = [n for n, _ in versions if n < active]
    return str(active), str(older[0]) if older else evaluation.DEFAULT


def review_context(project: Project, a: str | None, b: str | None) -> dict:
    da, db = default_pair(project)
    a, b = a or da, b if b is not None else db
    reviews, scorers = [], []
    for token in [a, b]:
        if token == "":
            continue
        version = evaluation.resolve_version(project, token)
        if any(r["version"] == evaluation.version_info(version)["key"] for r in reviews):
            continue
        reviews.append(evaluation.accuracy(project, version))
        scorers.append(version)
    labels = [lab for _, lab in project.class_labels]
    figs = {"roc": figures.roc(reviews), "pr": figures.precision_recall(reviews)}
    matrices = [cm for cm in (figures.confusion(r, labels) for r in reviews) if cm]
    for i, cm in enumerate(matrices):  # numbered as shown: a version without held-out labels has none
        figs[f"confusion{i}"] = cm
    versions: list[ModelVersion] = list(project.model_versions.order_by("-number"))
    by_number = {str(v.number): v for v in versions}
    return {
        "project": project,
        "reviews": reviews,
        "a": a,
        "b": b,
        "figures": figs,
        "versions": versions,
        "annotators": evaluation.annotators(project),
        "paired": evaluation.compare(project, scorers[0], scorers[1]) if len(scorers) == 2 else None,
        "cv_reports": [
            (by_number[r["version"]], evaluation.cv_report(by_number[r["version"]]))
            for r in reviews
            if r["version"] in by_number
        ],
        "labelled_total": evaluation.labelled_count(project),
        "positive": project.class_label(project.first_class) if project.task == Task.BINARY else None,
    }
