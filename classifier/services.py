"""Training, activation and scoring: rows in, rows out; the numbers come from ionsieve_core.ml."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from classifier.models import DefaultCalibration, HeldOutScore, ModelVersion, Prediction, TrainingRun
from webapp.datasets import arrays
from webapp.datasets.models import Dataset, IonImage
from webapp.jobs.dispatch import dispatch
from webapp.jobs.models import Job
from webapp.jobs.runner import JobCancelled
from webapp.projects.models import Project, Task

log = logging.getLogger(__name__)

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
    for source in extra_training_sources(project):
        a, c, labels, group_names, info = source.load(context)
        keep = [i for i, v in enumerate(labels) if _fits(project, v)]
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


def _fits(project: Project, value: str) -> bool:
    names = value.split() if project.task == Task.MULTILABEL else [value]
    return bool(names) and all(n in project.classes for n in names)


def extra_training_sources(project: Project) -> list:
    """Shared collections added to this project as training data (see webapp.collections)."""
    try:
        from webapp.collections.training import sources_for
    except ImportError:
        return []
    return sources_for(project)


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
    from ionsieve_core import ml

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
        store_held_out(version, images, result.held_out, result.held_out_thresholds, result.fold_of)
        run.model_version = version
        run.save(update_fields=["model_version"])
        activate(version)
    progress(0.95, "Scoring the project's datasets with the new model")
    score_project(project)
    # The default score is fitted to the same labels, so the review compares like with like.
    fit_default_calibration(project)
    return version


def store_held_out(
    version: ModelVersion | None,
    images: list[IonImage],
    probs: np.ndarray,
    thresholds: np.ndarray,
    fold_of: np.ndarray,
) -> None:
    """Keep each training image's label and out-of-fold prediction with the version. The
    project's images come first in the training arrays (shared collections follow)."""
    HeldOutScore.objects.bulk_create(
        [
            HeldOutScore(
                image=im,
                model_version=version,
                label=im.consensus,
                probabilities=[round(float(x), 6) for x in probs[i]],
                thresholds=[round(float(x), 6) for x in thresholds[i]],
                fold=int(fold_of[i]),
            )
            for i, im in enumerate(images)
        ],
        batch_size=1000,
    )


def _public(p: dict) -> dict:
    return {k: p.get(k) for k in DEFAULT_TRAIN_PARAMS}


def _progress(job: Job | None, report):
    def progress(fraction: float, message: str) -> None:
        if job is not None:
            job.report(fraction, message)
        if report is not None:
            report(fraction, message)

    return progress


@transaction.atomic
def activate(version: ModelVersion) -> None:
    ModelVersion.objects.filter(project=version.project, is_active=True).exclude(pk=version.pk).update(
        is_active=False
    )
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True


def deactivate_all(project: Project) -> None:
    ModelVersion.objects.filter(project=project, is_active=True).update(is_active=False)


# ---------------------------------------------------------------- scoring
def active_bundle(project: Project):
    """The active model version and its loaded bundle, or (None, None) when there is none
    or its file is missing/corrupt (then the default scorer is used)."""
    from ionsieve_core import ml

    version = project.model_versions.filter(is_active=True).first()
    if version is None or version.quick:  # a quick version has a head, not a network
        return version, None
    bundle = ml.load_bundle(version.path)
    if bundle is None:
        log.warning(
            "model v%s of %s cannot be loaded; using the default scorer", version.number, project.slug
        )
        return version, None
    return version, bundle


def score_project(project: Project, report=None) -> int:
    version, bundle = active_bundle(project)
    n = 0
    datasets = list(project.datasets.filter(status=Dataset.Status.READY))
    for i, ds in enumerate(datasets):
        if report:
            report(i / max(1, len(datasets)), f"Scoring {ds.name}")
        n += score_dataset(ds, version=version, bundle=bundle)
    return n


def score_dataset(
    dataset: Dataset, version: ModelVersion | None = None, bundle=None, use_active: bool = True
) -> int:
    """Predict every image of the dataset and store the probabilities. Returns the count."""
    from ionsieve_core import ml

    project = dataset.project
    from classifier import active

    if use_active and version is None and bundle is None:
        version, bundle = active_bundle(project)
    images = list(dataset.images.order_by("index"))
    if not images or not dataset.array_path.exists():
        return 0
    if version is not None and version.quick:
        return active.score_with_quick(dataset, version, images)
    if bundle is None:
        version = None
    if bundle is not None:
        xs, ctxs = arrays.arrays_for(dataset, images, with_context=bundle.params.context)
        if bundle.params.tta:
            probs = ml.predict(bundle, xs, contexts=ctxs)
            emb = None
        else:  # one pass gives the scores and the embeddings quick updates learn from
            from ionsieve_core.ml.active import predict_and_embed

            probs, emb = predict_and_embed(bundle, xs, ctxs)
        thresholds = np.asarray(bundle.thresholds, dtype=np.float64)
        store_predictions(project, images, probs, thresholds, version)
        if emb is not None:
            from ionsieve_core.ml.active import with_prior

            active.save_embeddings(
                dataset, version.pk, images, with_prior(emb, probs) if project.task == Task.BINARY else emb
            )
        if project.task == Task.BINARY and not _has_default_scores(images):
            default_raw_scores(dataset, images)  # so the review can set the default score beside models
        return len(images)
    if project.task == Task.BINARY:
        raw = default_raw_scores(dataset, images)
        if raw is None:
            return 0
        probs, thresholds = calibrate_default(project, raw)
        store_predictions(project, images, probs, thresholds, None, record=False)
        return len(images)
    # Multi-class and multi-label projects have no score until a model is trained; the shipped
    # model's embeddings let quick updates and "label next" work from the first labels.
    active.compute_embeddings(dataset, images, None)
    return 0


def default_raw_scores(dataset: Dataset, images: list[IonImage]) -> np.ndarray | None:
    """The default score of every image, kept raw (uncalibrated) as its Prediction rows, so
    calibrations refit from them."""
    from ionsieve_core import ml

    stack = arrays.load_stack(dataset)
    if stack.ndim != 3:
        return None
    from classifier import active

    if shares_acquisition(dataset, images):
        raw, emb = ml.default_binary_scores(
            np.asarray(stack, dtype=np.float32), arrays.dataset_context(dataset, stack), with_embeddings=True
        )
    else:
        # Unrelated pictures: each scored cropped to its own size, with no shared sample area.
        raw, emb = ml.default_binary_scores(
            [arrays.image_array(stack, im) for im in images], None, shared_context=False, with_embeddings=True
        )
    _store_default(images, raw)
    if emb is not None:  # the shipped model's embeddings (+ this score): quick updates before any training
        from ionsieve_core.ml.active import with_prior

        active.save_embeddings(dataset, None, images, with_prior(emb, raw))
    return raw


def shares_acquisition(dataset: Dataset, images: list[IonImage]) -> bool:
    """Whether the dataset's images come from one acquisition, so that where the sample lies
    can be learnt from all of them together. An imzML dataset does; an image collection only
    when every picture has the same size (pictures of one METASPACE dataset, say). Pictures of
    different sizes were padded with 'no data' to the largest one: they share no sample area."""
    if dataset.kind != Dataset.Kind.IMAGES:
        return True
    return len({(im.height or dataset.height, im.width or dataset.width) for im in images}) <= 1


def _has_default_scores(images: list[IonImage]) -> bool:
    return Prediction.objects.filter(image__in=images, model_version__isnull=True).count() == len(images)


def calibrate_default(project: Project, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The default score ranks well but is not calibrated: once the project has a few labels of
    each class, a Platt/isotonic map and the best-F1 threshold are fitted on them (per project,
    refitted when the labels change) and applied to `raw`."""
    from ionsieve_core.ml.calibration import apply_calibration

    fit = fit_default_calibration(project)
    if fit is None or fit.calibration is None:
        return raw, np.array([0.5, 0.5])
    p = apply_calibration(raw[:, 0], fit.calibration)
    return np.stack([p, 1 - p], axis=1), np.asarray(fit.thresholds, dtype=np.float64)


def fit_default_calibration(project: Project) -> DefaultCalibration | None:
    """The project's current default calibration, refitted when its labels changed. Its held-out
    predictions are cross-fitted like a model's: each dataset's images are calibrated by a map
    fitted on the other datasets' labels (stratified folds inside a single dataset)."""
    from ionsieve_core import ml
    from ionsieve_core.ml.calibration import (
        apply_calibration,
        best_f1_threshold,
        cross_fitted,
        fit_calibration,
    )

    if project.task != Task.BINARY:
        return None
    labels_at = timezone.now()
    rows = list(
        Prediction.objects.filter(
            model_version__isnull=True,
            image__dataset__project=project,
            image__dataset__status=Dataset.Status.READY,
        )
        .exclude(image__consensus__isnull=True)
        .select_related("image")
        .order_by("image__dataset_id", "image__index")
    )
    rows = [r for r in rows if r.image.consensus in project.classes]
    digest = hashlib.sha256(
        "".join(f"{r.image_id}:{r.image.consensus}:{r.probabilities[0]}\n" for r in rows).encode()
    ).hexdigest()
    current = DefaultCalibration.objects.filter(project=project).first()
    if current is not None and current.label_hash == digest:
        return current
    raw = np.array([r.probabilities for r in rows], dtype=np.float64).reshape(-1, 2)
    is0 = np.array([r.image.consensus == project.classes[0] for r in rows])
    cal = fit_calibration(raw[:, 0], is0) if rows else None
    with transaction.atomic():
        DefaultCalibration.objects.filter(project=project).delete()
        HeldOutScore.objects.filter(image__dataset__project=project, model_version__isnull=True).delete()
        if cal is None:
            return None
        t = best_f1_threshold(apply_calibration(raw[:, 0], cal), is0)
        groups = np.array([r.image.dataset_id for r in rows])
        y = np.where(is0, 0, 1)
        folds = ml.grouped_folds(groups, 5, y)
        held, thresholds, fold_of = cross_fitted("binary", raw, y, folds)
        fit = DefaultCalibration.objects.create(
            project=project,
            calibration=cal,
            thresholds=[t, 1 - t],
            label_hash=digest,
            label_total=len(rows),
            held_out_by="groups" if len(set(groups)) > 1 else "images",
            labels_at=labels_at,
        )
        store_held_out(None, [r.image for r in rows], held, thresholds, fold_of)
    return fit


def describe(project: Project, p: np.ndarray, thresholds: np.ndarray) -> tuple[str, float]:
    """Predicted class name(s) and an uncertainty in 0..1 (1 = on the decision boundary)."""
    if project.task == Task.MULTILABEL:
        chosen = [c for c, pc, t in zip(project.classes, p, thresholds, strict=False) if pc >= t]
        closeness = 1 - np.minimum(
            1, np.abs(p - thresholds) / np.maximum(np.minimum(thresholds, 1 - thresholds), 1e-6)
        )
        return " ".join(chosen), float(closeness.max())
    if project.task == Task.BINARY:
        t = float(thresholds[0])
        first = p[0] >= t
        span = t if not first else 1 - t
        return project.classes[0 if first else 1], float(1 - min(1.0, abs(p[0] - t) / max(span, 1e-6)))
    q = np.clip(p, 1e-12, 1)
    entropy = float(-(q * np.log(q)).sum() / np.log(len(q)))
    return project.classes[int(np.argmax(p))], entropy


def store_predictions(
    project: Project,
    images: list[IonImage],
    probs: np.ndarray,
    thresholds: np.ndarray,
    version: ModelVersion | None,
    record: bool = True,
) -> None:
    """Show `probs` in the galleries and, with `record`, keep them as this version's Prediction rows."""
    probs = np.asarray(probs, dtype=np.float64)
    for im, p in zip(images, probs, strict=True):
        im.probabilities = [round(float(x), 6) for x in p]
        im.probability = im.probabilities[0]
        im.predicted, im.uncertainty = describe(project, p, thresholds)
        im.prediction_version = version
    with transaction.atomic():
        IonImage.objects.bulk_update(
            images,
            ["probabilities", "probability", "predicted", "uncertainty", "prediction_version"],
            batch_size=1000,
        )
        if record and version is None:
            _store_default(images, probs)
        elif record:
            Prediction.objects.bulk_create(
                [
                    Prediction(image=im, model_version=version, probabilities=im.probabilities)
                    for im in images
                ],
                update_conflicts=True,
                unique_fields=["image", "model_version"],
                update_fields=["probabilities"],
                batch_size=1000,
            )


def _store_default(images: list[IonImage], raw: np.ndarray) -> None:
    # Partial unique indexes cannot be named in ON CONFLICT portably: replace instead.
    with transaction.atomic():
        Prediction.objects.filter(image__in=images, model_version__isnull=True).delete()
        Prediction.objects.bulk_create(
            [
                Prediction(image=im, model_version=None, probabilities=[round(float(x), 6) for x in p])
                for im, p in zip(images, raw, strict=True)
            ],
            batch_size=1000,
        )


def start_scoring(project: Project, user=None, dataset: Dataset | None = None) -> Job:
    job = Job.objects.create(
        project=project, kind=Job.Kind.PREDICT, created_by=user, target_id=dataset.pk if dataset else None
    )
    dispatch(job)
    return job
