"""Training a project's model: its labelled images (and the shared collections it trains on) in,
a new active ModelVersion out, with the held-out predictions of its cross-validation; the
numbers come from ionsieve_core.ml. After training, scoring.py rescores the project."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from classifier import scoring
from classifier.models import HeldOutScore, ModelVersion, TrainingRun
from webapp.collections.training import sources_for
from webapp.datasets import arrays
from webapp.datasets.models import Dataset, IonImage
from webapp.jobs.dispatch import dispatch
from webapp.jobs.models import Job
from webapp.jobs.runner import JobCancelled
from webapp.projects.models import Project, Task

DEFAULT_TRAIN_PARAMS = {"arch": "compact", "folds": 5, "ensemble": 1, "epochs": None, "context": False}


class TrainingError(Exception):
    """Why a model cannot be trained, for the user."""


# ---------------------------------------------------------------- labelled data
def label_target(project: Project, value: str) -> int | np.ndarray:
    if project.task == Task.MULTILABEL:
        v = np.zeros(len(project.classes), dtype=np.float32)
        for name in value.split():
            v[project.classes.index(name)] = 1
        return v
    return project.classes.index(value)


def labelled_images(project: Project) -> list[IonImage]:
    return list(
        IonImage.objects.filter(dataset__project=project, dataset__status=Dataset.Status.READY)
        .exclude(consensus__isnull=True)
        .select_related("dataset")
        .order_by("dataset_id", "index")
    )


def label_fingerprint(project: Project, images: list[IonImage], extra: list[dict]) -> tuple[dict, str]:
    counts = Counter()
    h = hashlib.sha256()
    for im in images:
        for name in im.consensus.split() if project.task == Task.MULTILABEL else [im.consensus]:
            counts[name] += 1
        h.update(f"{im.pk}:{im.consensus}\n".encode())
    for item in extra:
        h.update(json.dumps(item, sort_keys=True).encode())
    return dict(counts), h.hexdigest()


def training_data(project: Project, context: bool):
    """Arrays, targets and groups (one group per dataset) from every consensus label, plus
    images of the shared collections this project trains on."""
    images = labelled_images(project)
    xs, ctxs, ys, groups = [], [], [], []
    by_dataset: dict[int, list[IonImage]] = {}
    for im in images:
        by_dataset.setdefault(im.dataset_id, []).append(im)
    for ims in by_dataset.values():
        a, c = arrays.arrays_for(ims[0].dataset, ims, with_context=context)
        xs += a
        ctxs += c or [None] * len(a)
        ys += [label_target(project, im.consensus) for im in ims]
        groups += [f"d{ims[0].dataset_id}"] * len(ims)
    used = []
    own = {ds.name: f"d{ds.pk}" for ds in project.datasets.order_by("-pk")}
    for source in sources_for(project):
        a, c, labels, group_names, info = source.load(context)
        keep = [i for i, v in enumerate(labels) if label_fits(project, v)]
        xs += [a[i] for i in keep]
        ctxs += [c[i] if c else None for i in keep]
        ys += [label_target(project, labels[i]) for i in keep]
        # A collection made from this project's own datasets holds copies of their images: they
        # join their dataset's group, so a dataset held out is held out with its copies.
        mine = getattr(
            getattr(getattr(source, "version", None), "collection", None), "source_project_id", None
        )
        groups += [
            own.get(group_names[i].split(":", 1)[-1], group_names[i])
            if mine == project.pk
            else group_names[i]
            for i in keep
        ]
        used.append(info)
    return images, xs, ctxs, ys, groups, used


def label_fits(project: Project, value: str) -> bool:
    """Whether a consensus label names only this project's classes (shared collections may not)."""
    names = value.split() if project.task == Task.MULTILABEL else [value]
    return bool(names) and all(n in project.classes for n in names)


# ---------------------------------------------------------------- training
def start_training(project: Project, user, params: dict | None = None) -> TrainingRun:
    merged = {**DEFAULT_TRAIN_PARAMS, **{k: v for k, v in (params or {}).items() if v is not None}}
    with transaction.atomic():
        job = Job.objects.create(
            project=project, kind=Job.Kind.TRAIN, created_by=user, message="Waiting for a worker"
        )
        run = TrainingRun.objects.create(project=project, job=job, params=merged, created_by=user)
        job.target_id = run.pk
        job.save(update_fields=["target_id"])
        dispatch(job)
    return run


def run_training(run: TrainingRun, job: Job | None = None, report=None, force: bool = False) -> ModelVersion:
    """Train with grouped cross-validation, save the model file atomically, activate it."""
    from ionsieve_core import ml  # here: see classifier.scoring

    project = run.project
    p = run.params
    progress = _progress(job, report)
    progress(0.01, "Collecting labelled images")
    labels_at = timezone.now()  # labels given after this are "since training" on the review page
    images, xs, ctxs, ys, groups, used = training_data(project, bool(p.get("context")))
    counts, digest = label_fingerprint(project, images, used)
    if len(xs) < 4:
        raise TrainingError(
            f"Only {len(xs)} labelled images: label at least a few images of each class first."
        )
    if project.task != Task.MULTILABEL:
        missing = [c for c in project.classes if counts.get(c, 0) == 0 and project.task == Task.BINARY]
        if missing:
            raise TrainingError(
                f"No image is labelled {', '.join(missing)} yet: label some of each class first."
            )
    active = project.model_versions.filter(is_active=True).first()
    if not force and active and active.label_hash == digest and active.params == _public(p):
        raise TrainingError(f"The labels have not changed since model v{active.number}: nothing to retrain.")
    y = np.stack(ys) if project.task == Task.MULTILABEL else np.asarray(ys, dtype=np.int64)
    params = ml.TrainParams(
        arch=p.get("arch", "compact"),
        folds=int(p.get("folds", 5)),
        ensemble=int(p.get("ensemble", 1)),
        context=bool(p.get("context")),
        # Binary projects fine-tune the shipped off-sample model (when the shapes match).
        init="default" if project.task == Task.BINARY else None,
        **({"epochs": int(p["epochs"])} if p.get("epochs") else {}),
    )
    contexts = ctxs if params.context else None

    def should_stop() -> bool:
        return job is not None and job.should_stop()

    try:
        result = ml.train(
            xs,
            y,
            np.asarray(groups),
            project.task,
            project.classes,
            params,
            contexts=contexts,
            progress=lambda f, m: progress(0.03 + 0.87 * f, m),
            should_stop=should_stop,
        )
    except ml.TrainingCancelled:
        raise JobCancelled() from None
    progress(0.92, "Saving the model")
    with transaction.atomic():
        number = (project.model_versions.aggregate(n=Max("number"))["n"] or 0) + 1
        file_name = f"v{number}.zip"
        path = Path(settings.MEDIA_ROOT) / "models" / str(project.pk) / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        ml.save_bundle(result.bundle, path)
        version = ModelVersion.objects.create(
            project=project,
            number=number,
            arch=params.arch,
            task=project.task,
            classes=project.classes,
            params=_public(p),
            label_counts=counts,
            label_total=len(images),
            label_hash=digest,
            dataset_count=len(set(groups)),
            collections_used=used,
            # The review page re-derives predicted classes from stored probabilities with these.
            metrics={**result.metrics, "thresholds": [float(t) for t in result.bundle.thresholds]},
            notes=list(result.notes),
            file_name=file_name,
            created_by=run.created_by,
            labels_at=labels_at,
            held_out_by=result.held_out_by,
        )
        HeldOutScore.objects.store(
            version, images, result.held_out, result.held_out_thresholds, result.fold_of
        )
        run.model_version = version
        run.save(update_fields=["model_version"])
        version.activate()
    progress(0.95, "Scoring the project's datasets with the new model")
    scoring.score_project(project)
    # The default score is fitted to the same labels, so the review compares like with like.
    scoring.fit_default_calibration(project)
    return version


def _public(p: dict) -> dict:
    return {k: p.get(k) for k in DEFAULT_TRAIN_PARAMS}


def _progress(job: Job | None, report):
    def progress(fraction: float, message: str) -> None:
        if job is not None:
            job.report(fraction, message)
        if report is not None:
            report(fraction, message)

    return progress
