"""Learn while you label: stored embeddings, the quick update, the live update and "label next".

Embeddings: at scoring time each dataset keeps, beside its image array, one float16 row per image
(row = image index) of the scoring network's last hidden layer: `embeddings/v<id>.npy` for a full
model version, `embeddings/default.npy` for the shipped off-sample model. A quick update fits a
linear head (ionsieve_core.ml.active) on the embeddings of the active full version (or of the
shipped model before any training) and rescores every image from them, without running a network.

Live update: labels arriving (any source) queue one QUICK job per project through the jobs
runner (webapp.jobs); the worker waits until `IONSIEVE_LIVE_UPDATE_LABELS` label changes came in or
the project was idle for `IONSIEVE_LIVE_UPDATE_IDLE_SECONDS`, then updates. The label request only
writes a job row.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from classifier.models import HeldOutScore, ModelVersion
from webapp.datasets import arrays
from webapp.datasets.models import Dataset, IonImage, Label, LabelEvent
from webapp.jobs.dispatch import dispatch
from webapp.jobs.models import Job
from webapp.projects.models import Project, Task

log = logging.getLogger(__name__)

QUICK_KEEP = 5  # quick versions kept (older inactive ones are deleted with their scores)
STORE_CHUNK = 500  # rows rescored per transaction


# ---------------------------------------------------------------- embeddings on disk
def _key(base_id: int | None) -> str:
    return f"v{base_id}" if base_id else "default"


def embeddings_path(dataset: Dataset, base_id: int | None) -> Path:
    return dataset.directory / "embeddings" / f"{_key(base_id)}.npy"


def save_embeddings(dataset: Dataset, base_id: int | None, images: list[IonImage], emb: np.ndarray) -> None:
    """Keep one float16 row per image (row = image index); drop other full versions' files."""
    from webapp.datasets import storage

    if emb is None or len(images) == 0:
        return
    rows = np.zeros((max(im.index for im in images) + 1, emb.shape[1]), np.float16)
    rows[[im.index for im in images]] = np.asarray(emb, dtype=np.float16)
    path = embeddings_path(dataset, base_id)
    storage.save_npy(path, rows)
    for other in path.parent.glob("v*.npy"):
        if other.name != path.name:
            other.unlink(missing_ok=True)


def load_embeddings(dataset: Dataset, base_id: int | None, images: list[IonImage]) -> np.ndarray | None:
    """(len(images), d) float32, or None when they were not stored (or not for every image)."""
    path = embeddings_path(dataset, base_id)
    try:
        rows = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    idx = np.fromiter((im.index for im in images), dtype=np.int64, count=len(images))
    if len(idx) and idx.max() >= len(rows):
        return None
    return np.asarray(rows[idx], dtype=np.float32)


def compute_embeddings(
    dataset: Dataset, images: list[IonImage], base: ModelVersion | None, bundle=None
) -> np.ndarray | None:
    """Embeddings of the images by `base` (None: the shipped model), stored for next time."""
    from ionsieve_core.ml import active as mla

    if not images or not dataset.array_path.exists():
        return None
    binary = dataset.project.task == Task.BINARY
    if base is not None:
        xs, ctxs = arrays.arrays_for(dataset, images, with_context=bundle.params.context)
        probs, emb = mla.predict_and_embed(bundle, xs, ctxs)
        emb = mla.with_prior(emb, probs) if binary else emb
    elif binary:  # the default score computes them, with its own opinion beside them
        from classifier import scoring

        scoring.default_raw_scores(dataset, images)
        return load_embeddings(dataset, None, images)
    else:
        xs, _ = arrays.arrays_for(dataset, images)
        emb = mla.default_embeddings(xs)
    if emb is not None:
        save_embeddings(dataset, base.pk if base else None, images, emb)
    return emb


# ---------------------------------------------------------------- the quick update
class QuickUpdateError(Exception):
    """Why a quick update cannot run yet, for the user."""


@dataclass
class Embedded:
    dataset: Dataset
    images: list[IonImage]
    emb: np.ndarray


def _base(project: Project) -> tuple[ModelVersion | None, object]:
    """The full version whose embeddings quick updates learn from, and its loaded bundle;
    (None, None) for the shipped model (no full version active, or its file is unusable)."""
    from ionsieve_core import ml

    active = project.model_versions.filter(is_active=True).first()
    base_id = active.base_id if active else None
    base = ModelVersion.objects.filter(pk=base_id, quick=False).first() if base_id else None
    if base is None:
        return None, None
    bundle = ml.load_bundle(base.path)
    return (base, bundle) if bundle is not None else (None, None)


def embedded_project(project: Project, report=None) -> tuple[ModelVersion | None, list[Embedded]]:
    """Every ready dataset's images with their embeddings from one network: the active full
    version (the base of an active quick version), else the shipped model. Missing files are
    computed (and kept)."""
    active = project.model_versions.filter(is_active=True).first()
    base_id = active.base_id if active else None
    fields = ("id", "dataset_id", "index", "consensus", "label_count")
    datasets = [
        (ds, list(ds.images.only(*fields).order_by("index")))
        for ds in project.datasets.filter(status=Dataset.Status.READY).order_by("pk")
    ]
    datasets = [(ds, ims) for ds, ims in datasets if ims]
    stored = [load_embeddings(ds, base_id, ims) for ds, ims in datasets]
    base = ModelVersion.objects.filter(pk=base_id).first() if base_id else None
    if any(e is None for e in stored):
        base, bundle = _base(project)
        if (base.pk if base else None) != base_id:  # the full version's file is unusable
            stored = [load_embeddings(ds, None, ims) for ds, ims in datasets]
        for i, ((ds, ims), e) in enumerate(zip(datasets, stored, strict=True)):
            if e is None:
                if report:
                    report(0.05 + 0.4 * i / max(1, len(datasets)), f"Computing image features of {ds.name}")
                stored[i] = compute_embeddings(ds, ims, base, bundle)
    return base, [
        Embedded(ds, ims, e) for (ds, ims), e in zip(datasets, stored, strict=True) if e is not None
    ]


def _targets(project: Project, values: list[str]) -> np.ndarray:
    from classifier.training import label_target

    ys = [label_target(project, v) for v in values]
    return np.stack(ys) if project.task == Task.MULTILABEL else np.asarray(ys, dtype=np.int64)


@dataclass
class _Labelled:
    """The labelled images of a quick update, their embeddings and datasets, and the embeddings
    of images nobody has labelled (the binary prior learns from them)."""

    images: list
    emb: list
    groups: list
    free: list


def _labelled_embeddings(project: Project, parts: list) -> _Labelled:
    from classifier.training import label_fits

    lab = _Labelled([], [], [], [])
    for part in parts:
        for j, im in enumerate(part.images):
            if im.consensus is not None and label_fits(project, im.consensus):
                lab.images.append(im)
                lab.emb.append(part.emb[j])
                lab.groups.append(part.dataset.pk)
            elif im.label_count == 0:
                lab.free.append(part.emb[j])
    return lab


def _quick_thresholds(task: str, oof: np.ndarray | None, y: np.ndarray, k: int) -> list[float]:
    from ionsieve_core.ml.calibration import best_f1_threshold

    if task == Task.BINARY:
        t = best_f1_threshold(oof[:, 0], y == 0) if oof is not None else 0.5
        return [t, 1 - t]
    if task == Task.MULTILABEL and oof is not None:
        return [best_f1_threshold(oof[:, c], y[:, c] > 0.5) for c in range(k)]
    return [0.5] * k


def _quick_note(base: ModelVersion | None, folds: int, held_out_by: str) -> str:
    return (
        f"Quick update: a logistic regression on the image features of "
        f"{'model v' + str(base.number) if base else 'the shipped off-sample model'}; held-out "
        f"scores from {folds} folds "
        + (
            "grouped by dataset."
            if held_out_by == "groups"
            else "inside the one labelled dataset (optimistic)."
        )
    )


def run_quick_update(project: Project, user=None, report=None) -> ModelVersion:
    """Fit the quick head on every consensus label, store it as a quick ModelVersion (with
    held-out predictions cross-validated over datasets where there are several), activate it
    and rescore every image of the project. Raises QuickUpdateError."""
    from classifier.training import label_fingerprint
    from ionsieve_core.ml import active as mla

    report = report or (lambda f, m: None)
    labels_at = timezone.now()
    report(0.02, "Reading the image features")
    base, parts = embedded_project(project, report)
    if not parts:
        raise QuickUpdateError("No image features yet: the datasets are still being processed.")
    classes = list(project.classes)
    lab = _labelled_embeddings(project, parts)
    if len(lab.images) < 2:
        raise QuickUpdateError(
            f"Only {len(lab.images)} labelled image(s): label a few images of two classes first."
        )
    counts, digest = label_fingerprint(project, lab.images, [])
    active = project.model_versions.filter(is_active=True).first()
    if (
        active is not None
        and active.quick
        and active.label_hash == digest
        and active.base_id == (base.pk if base else None)
    ):
        return active
    x = np.stack(lab.emb)
    y = _targets(project, [im.consensus for im in lab.images])
    k = len(classes)
    task = project.task
    report(0.5, "Learning from the labels")
    # Binary: the scorer's opinion of unlabelled images (stored beside the embeddings) is fitted
    # too, with the weight of a few labels, so ten labels refine it instead of replacing it.
    prior = mla.prior_pseudo_labels(np.stack(lab.free)) if task == Task.BINARY and lab.free else None
    try:
        head = mla.fit_head(x, y, task, k, prior=prior)
    except mla.HeadError as exc:
        raise QuickUpdateError(str(exc)) from None
    ev = _evaluate_quick(project, base, lab, x, y, prior)
    report(0.7, "Saving the quick update")
    version = _save_quick_version(project, user, head, base, lab, (counts, digest, labels_at), ev)
    report(0.8, "Rescoring the images")
    labelled_in = set(lab.groups)
    for part in parts:
        # A head fitted on some datasets can be worse than the scorer on a dataset it has no
        # label from (bench_active, "another dataset": generated off-heavy projects fell from
        # 0.97 to 0.74 macro F1): those keep their scores until a full training.
        if part.dataset.pk not in labelled_in:
            continue
        probs = mla.head_probabilities(head, part.emb)
        store_fast(project, part.images, probs, np.asarray(ev.thresholds), version)
    prune_quick(project)
    return version


@dataclass
class _QuickEvaluation:
    thresholds: list[float]
    metrics: dict
    notes: list[str]
    held_out_by: str  # "" without held-out predictions (fewer than 4 labels)
    held: tuple | None  # (probabilities, thresholds, fold of each image), as HeldOutScore keeps them


def _evaluate_quick(project: Project, base, lab: _Labelled, x: np.ndarray, y: np.ndarray, prior):
    """Held-out predictions of the head (folds grouped by dataset), its thresholds and metrics."""
    from ionsieve_core.ml import active as mla
    from ionsieve_core.ml.calibration import cross_fitted
    from ionsieve_core.ml.cv import grouped_folds
    from ionsieve_core.ml.metrics import compute_metrics
    from ionsieve_core.ml.training import _jsonable

    task, classes, k = project.task, list(project.classes), len(project.classes)
    groups_a = np.asarray(lab.groups)
    if len(lab.images) < 4:
        thresholds = _quick_thresholds(task, None, y, k)
        return _QuickEvaluation(
            thresholds, {"thresholds": [float(v) for v in thresholds], "folds": 0}, [], "", None
        )
    folds = grouped_folds(groups_a, 5, y if task != Task.MULTILABEL else None)
    oof = mla.cross_validated_head(x, y, task, k, folds, prior=prior)
    held = cross_fitted(task, oof, y, folds, calibrate=False)
    held_out_by = "groups" if len(set(lab.groups)) > 1 else "images"
    thresholds = _quick_thresholds(task, oof, y, k)
    metrics: dict = {"thresholds": [float(v) for v in thresholds], "folds": len(folds)}
    metrics.update(
        _jsonable(compute_metrics(y, oof, task, classes, groups=groups_a.astype(str), thresholds=thresholds))
    )
    return _QuickEvaluation(
        thresholds, metrics, [_quick_note(base, len(folds), held_out_by)], held_out_by, held
    )


def _save_quick_version(
    project: Project,
    user,
    head,
    base: ModelVersion | None,
    lab: _Labelled,
    labels: tuple[dict, str, object],
    ev: _QuickEvaluation,
) -> ModelVersion:
    """The head's file and its quick ModelVersion (with its held-out rows), activated."""
    counts, digest, labels_at = labels
    with transaction.atomic():
        number = (project.model_versions.aggregate(n=Max("number"))["n"] or 0) + 1
        file_name = f"v{number}-quick.npz"
        path = Path(settings.MEDIA_ROOT) / "models" / str(project.pk) / file_name
        _save_head(head, path)
        version = ModelVersion.objects.create(
            project=project,
            number=number,
            arch="quick",
            task=project.task,
            classes=list(project.classes),
            quick=True,
            params={
                "quick": True,
                "base": base.pk if base else None,
                "features": f"v{base.number}" if base else "shipped model",
            },
            label_counts=counts,
            label_total=len(lab.images),
            label_hash=digest,
            dataset_count=len(set(lab.groups)),
            metrics=ev.metrics,
            notes=ev.notes,
            file_name=file_name,
            created_by=user,
            labels_at=labels_at,
            held_out_by=ev.held_out_by,
        )
        if ev.held is not None:
            HeldOutScore.objects.store(version, lab.images, *ev.held)
        version.activate()
    return version


def _save_head(head, path: Path) -> None:
    from webapp.datasets import storage

    with storage.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **head.to_arrays())


def load_head(version: ModelVersion):
    from ionsieve_core.ml.active import Head

    try:
        with np.load(version.path) as a:
            return Head.from_arrays(a)
    except (OSError, ValueError, KeyError):
        log.warning("quick version v%s of project %s cannot be read", version.number, version.project_id)
        return None


def score_with_quick(dataset: Dataset, version: ModelVersion, images: list[IonImage]) -> int:
    """Scores of a dataset while a quick version is active: by its head when the dataset has
    labels it learnt from, else by the scorer the head was built on (the full version, or the
    default score), as run_quick_update leaves them."""
    from classifier import scoring
    from ionsieve_core import ml
    from ionsieve_core.ml import active as mla

    head = load_head(version)
    base = ModelVersion.objects.filter(pk=version.base_id).first() if version.base_id else None
    if not version.held_out_scores.filter(image__dataset=dataset).exists() and not any(
        im.consensus for im in images
    ):
        bundle = ml.load_bundle(base.path) if base is not None else None
        if base is not None and bundle is not None:
            return scoring.score_dataset(dataset, version=base, bundle=bundle, use_active=False)
        return scoring.score_dataset(dataset, use_active=False)
    emb = load_embeddings(dataset, version.base_id, images)
    if emb is None:
        bundle = ml.load_bundle(base.path) if base is not None else None
        if head is None or (base is not None and bundle is None):
            return scoring.score_dataset(dataset, use_active=False)
        emb = compute_embeddings(dataset, images, base, bundle)
    if head is None or emb is None or emb.shape[1] != head.coef.shape[1]:
        return scoring.score_dataset(dataset, use_active=False)
    probs = mla.head_probabilities(head, emb)
    store_fast(
        dataset.project,
        images,
        probs,
        np.asarray(version.metrics.get("thresholds") or [0.5] * probs.shape[1]),
        version,
    )
    return len(images)


def store_fast(
    project: Project, images: list[IonImage], probs: np.ndarray, thresholds: np.ndarray, version: ModelVersion
) -> None:
    """scoring.store_predictions for thousands of rows in well under a second: the gallery
    fields by one executemany UPDATE, the version's Prediction rows by one executemany INSERT
    (ON CONFLICT: a rescore replaces them); bulk_create spent 0.5 ms a row preparing values."""
    from django.db import connection

    from classifier.models import Prediction
    from classifier.scoring import describe

    probs = np.round(np.asarray(probs, dtype=np.float64), 6)
    json_field = IonImage._meta.get_field("probabilities")
    now = timezone.now()
    q = connection.ops.quote_name
    updates, inserts = [], []
    for im, p in zip(images, probs, strict=True):
        im.probabilities = p.tolist()
        im.probability = im.probabilities[0]
        im.predicted, im.uncertainty = describe(project, p, thresholds)
        im.prediction_version = version
        value = json_field.get_db_prep_save(im.probabilities, connection)
        updates.append((value, im.probability, im.predicted, im.uncertainty, version.pk, im.pk))
        inserts.append((im.pk, version.pk, value, now))
    created = Prediction._meta.get_field("created_at").get_db_prep_save(now, connection)
    inserts = [(a, b, c, created) for a, b, c, _ in inserts]
    # Short transactions of STORE_CHUNK rows: label writes (SQLite has one writer at a time) wait
    # for one chunk, not for the whole project.
    for s in range(0, len(updates), STORE_CHUNK):
        with transaction.atomic(), connection.cursor() as cur:
            cur.executemany(
                f"UPDATE {q(IonImage._meta.db_table)} SET {q('probabilities')} = %s, {q('probability')} = %s, "
                f"{q('predicted')} = %s, {q('uncertainty')} = %s, {q('prediction_version_id')} = %s "
                f"WHERE {q('id')} = %s",
                updates[s : s + STORE_CHUNK],
            )
            cur.executemany(
                f"INSERT INTO {q(Prediction._meta.db_table)} ({q('image_id')}, {q('model_version_id')}, "
                f"{q('probabilities')}, {q('created_at')}) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT ({q('image_id')}, {q('model_version_id')}) "
                f"DO UPDATE SET {q('probabilities')} = excluded.{q('probabilities')}",
                inserts[s : s + STORE_CHUNK],
            )


def prune_quick(project: Project) -> None:
    """Keep the newest QUICK_KEEP quick versions (and any active one): their Prediction and
    held-out rows go with them; finished live-update jobs beyond the newest 20 go too."""
    done = list(
        project.jobs.filter(kind=Job.Kind.QUICK, status=Job.Status.DONE)
        .order_by("-created_at")
        .values_list("pk", flat=True)[20:]
    )
    if done:
        Job.objects.filter(pk__in=done).delete()
    old = list(
        project.model_versions.filter(quick=True, is_active=False)
        .order_by("-number")
        .values_list("pk", "file_name")[QUICK_KEEP:]
    )
    if not old:
        return
    ModelVersion.objects.filter(pk__in=[pk for pk, _ in old]).delete()
    for _, name in old:
        (Path(settings.MEDIA_ROOT) / "models" / str(project.pk) / name).unlink(missing_ok=True)


# ---------------------------------------------------------------- the live update
def live_update_labels() -> int:
    return int(getattr(settings, "IONSIEVE_LIVE_UPDATE_LABELS", 10))


def live_update_idle() -> float:
    return float(getattr(settings, "IONSIEVE_LIVE_UPDATE_IDLE_SECONDS", 3))


def labels_arrived(project: Project) -> Job | None:
    """Called after labels were saved: queue the project's live update unless one is waiting
    already (it will see these labels). Writes one job row; never runs the update here."""
    if live_update_labels() <= 0:
        return None
    if current_app.conf.task_always_eager:  # no worker (a single-process run): never inside a label request
        return None
    waiting = Job.objects.filter(project=project, kind=Job.Kind.QUICK, status=Job.Status.QUEUED)
    if waiting.exists():  # the common case, without a lock
        return None
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # one queued job per project
        if Job.objects.filter(project=project, kind=Job.Kind.QUICK, status=Job.Status.QUEUED).exists():
            return None
        job = Job.objects.create(project=project, kind=Job.Kind.QUICK, message="Waiting for more labels")
        dispatch(job)
    return job


def _changes_since(project: Project, since) -> tuple[int, object]:
    qs = LabelEvent.objects.filter(image__dataset__project=project)
    if since is not None:
        qs = qs.filter(at__gt=since)
    agg = qs.aggregate(n=Count("pk"), last=Max("at"))
    return agg["n"] or 0, agg["last"]


def run_live_update(job: Job, sleep=time.sleep) -> str:
    """The QUICK job's work in the worker: wait for enough labels or a pause, then update."""
    project = job.project
    need, idle = live_update_labels(), live_update_idle()
    last_quick = project.model_versions.filter(quick=True).order_by("-number").first()
    since = last_quick.labels_at if last_quick else None
    deadline = time.monotonic() + max(30.0, 10 * idle)
    while True:
        n, last = _changes_since(project, since)
        quiet = last is None or (timezone.now() - last).total_seconds() >= idle
        if n >= need or quiet or time.monotonic() > deadline:
            break
        job.stop_if_cancelled()
        job.report(0.0, f"Waiting for more labels ({n} new)")
        sleep(min(0.5, idle))
    if n == 0:
        return "No new labels."
    try:
        version = run_quick_update(project, report=job.report)
    except QuickUpdateError as exc:
        return str(exc)
    # Labels that came in while this ran start the next update.
    if LabelEvent.objects.filter(image__dataset__project=project, at__gt=version.labels_at).exists():
        transaction.on_commit(lambda: labels_arrived(project))
    return f"Scores updated from {version.label_total} labels (quick update v{version.number})"


# ---------------------------------------------------------------- label next
def unlabelled(qs, user=None):
    """Images nobody labelled (with a user: that user has not labelled and no consensus exists)."""
    if user is None:
        return qs.filter(label_count=0)
    mine = Label.objects.filter(user=user).values("image_id")
    return qs.filter(consensus__isnull=True).exclude(pk__in=mine)


def next_images(scope: Dataset | Project, n: int, strategy: str = "active", user=None) -> list[IonImage]:
    """The n unlabelled images to label next, best first (see ionsieve_core.ml.active.select)."""
    from types import SimpleNamespace

    from ionsieve_core.ml import active as mla

    if strategy not in mla.STRATEGIES:
        raise ValueError(f"Unknown strategy '{strategy}': one of {', '.join(mla.STRATEGIES)}.")
    if isinstance(scope, Dataset):
        datasets = [scope] if scope.is_ready else []
    else:
        datasets = list(scope.datasets.filter(status=Dataset.Status.READY).order_by("pk"))
    project = scope if isinstance(scope, Project) else scope.project
    act = project.model_versions.filter(is_active=True).first()
    base_id = act.base_id if act else None
    ids: list[int] = []
    u_all, p_all, embs, lab_embs = [], [], [], []
    have_emb = strategy == "active"
    for ds in datasets:
        qs = IonImage.objects.filter(dataset=ds)
        todo = [
            SimpleNamespace(pk=i, index=x, probability=p, uncertainty=u)
            for i, x, p, u in unlabelled(qs, user)
            .order_by("index")
            .values_list("pk", "index", "probability", "uncertainty")
        ]
        if not todo:
            continue
        ids += [t.pk for t in todo]
        u_all += [np.nan if t.uncertainty is None else t.uncertainty for t in todo]
        p_all += [np.nan if t.probability is None else t.probability for t in todo]
        if not have_emb:
            continue
        key = base_id
        e = load_embeddings(ds, key, todo)
        if e is None and base_id:
            key = None  # the shipped model's, until the dataset is rescored
            e = load_embeddings(ds, None, todo)
        if e is None or (embs and e.shape[1] != embs[0].shape[1]):
            have_emb = False
            continue
        embs.append(e)
        done = [
            SimpleNamespace(index=x)
            for x in qs.filter(consensus__isnull=False).values_list("index", flat=True)
        ]
        le = load_embeddings(ds, key, done) if done else None
        if le is not None:
            lab_embs.append(le)
    if not ids:
        return []
    emb = np.concatenate(embs) if have_emb and embs else None
    lab = np.concatenate(lab_embs) if emb is not None and lab_embs else None
    if lab is not None and lab.shape[1] != emb.shape[1]:
        lab = None
    seed = int(hashlib.sha256(f"{scope.pk}:{len(ids)}".encode()).hexdigest()[:8], 16)
    order = mla.select(
        n,
        strategy,
        uncertainty=np.array(u_all, dtype=np.float64),
        probability=np.array(p_all, dtype=np.float64),
        embeddings=emb,
        labelled_embeddings=lab,
        seed=seed,
    )
    chosen = [ids[i] for i in order]
    rows = IonImage.objects.in_bulk(chosen)
    return [rows[i] for i in chosen if i in rows]


def image_name(im: IonImage) -> str:
    return im.name or im.display_name
