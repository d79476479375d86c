"""Scoring: the active model version (or the default score, calibrated on the project's labels)
predicts every image of a dataset, and the gallery fields and Prediction rows keep the result.
start_scoring queues it as a job; score_dataset / score_project do it here."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
from django.db import connections, router, transaction
from django.utils import timezone

from classifier import active
from classifier.models import DefaultCalibration, HeldOutScore, ModelVersion, Prediction
from webapp.datasets import arrays
from webapp.datasets.models import Dataset, IonImage
from webapp.jobs.dispatch import dispatch
from webapp.jobs.models import Job
from webapp.projects.models import Project, Task

log = logging.getLogger(__name__)

# ionsieve_core.ml (scikit-learn, scikit-image, maybe TensorFlow) is imported inside the
# functions that score: a web process or a command that never scores does not pay for it.


def active_bundle(project: Project):
    """The active model version and its loaded bundle, or (None, None) when there is none
    or its file is missing/corrupt (then the default score is used)."""
    from ionsieve_core import ml

    version = project.model_versions.filter(is_active=True).first()
    if version is None or version.quick:  # a quick version has a head, not a network
        return version, None
    bundle = ml.load_bundle(version.path)
    if bundle is None:
        log.warning("model v%s of %s cannot be loaded; using the default score", version.number, project.slug)
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
    from ionsieve_core.ml.active import predict_and_embed, with_prior

    project = dataset.project
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
            probs, emb = predict_and_embed(bundle, xs, ctxs)
        thresholds = np.asarray(bundle.thresholds, dtype=np.float64)
        store_predictions(project, images, probs, thresholds, version)
        if emb is not None:
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
    from ionsieve_core.ml.active import with_prior

    stack = arrays.load_stack(dataset)
    if stack.ndim != 3:
        return None
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
        HeldOutScore.objects.store(None, [r.image for r in rows], held, thresholds, fold_of)
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
        _update_rows(
            images, ["probabilities", "probability", "predicted", "uncertainty", "prediction_version"]
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


def _update_rows(images: list[IonImage], fields: list[str]) -> None:
    """Save `fields` of every image with one UPDATE statement run for each row (executemany).
    Django's bulk_update builds a CASE expression per field and row: ~1 s of the first scoring of
    400 images, a fifth of `import_imzml`; this takes a few ms."""
    opts = IonImage._meta
    columns = [opts.get_field(f) for f in fields]
    conn = connections[router.db_for_write(IonImage)]
    qn = conn.ops.quote_name
    sql = (
        f"UPDATE {qn(opts.db_table)} SET "
        + ", ".join(f"{qn(c.column)} = %s" for c in columns)
        + f" WHERE {qn(opts.pk.column)} = %s"
    )
    rows = [[c.get_db_prep_save(getattr(im, c.attname), conn) for c in columns] + [im.pk] for im in images]
    with conn.cursor() as cursor:
        cursor.executemany(sql, rows)


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
