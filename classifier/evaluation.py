"""How well a model version (or the default score) does, measured three ways never mixed:

1. held_out (the headline): each image labelled at training time, scored by a model that never
   saw a label of its dataset: the out-of-fold predictions of the grouped cross-validation,
   stored per image with the version (HeldOutScore rows). The default score's calibration is
   cross-fitted the same way.
2. since_training: labels given (or changed) after the version's training labels were read,
   scored by the version itself: how it does on new work.
3. training_fit: the version on the very labels it learnt from: optimistic.

Each measure comes with its number of labels and 95% intervals (ionsieve_core.ml.metrics.measure).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.http import Http404
from sklearn import metrics as skm

from classifier.models import DefaultCalibration, HeldOutScore, ModelVersion, Prediction
from webapp.datasets.models import Dataset, IonImage, Label
from webapp.projects.models import Project, Task

DEFAULT = "default"


class ReviewError(ValueError):
    """A version parameter that is neither a number nor 'default'."""


def resolve_version(project: Project, token: str | int | None) -> ModelVersion | None:
    """'default' -> None (the default score); a number -> that version; empty -> the active one."""
    if token in (None, ""):
        return project.model_versions.filter(is_active=True).first()
    if str(token).lower() == DEFAULT:
        return None
    try:
        number = int(token)
    except (TypeError, ValueError):
        raise ReviewError("version must be a model number or 'default'") from None
    version = project.model_versions.filter(number=number).first()
    if version is None:
        raise Http404("No such model version.")
    return version


def version_info(version: ModelVersion | None) -> dict:
    if version is None:
        return {"number": None, "key": DEFAULT, "name": "default score"}
    return {
        "number": version.number,
        "key": str(version.number),
        "name": f"v{version.number} ({version.arch})",
        "active": version.is_active,
    }


def thresholds_of(project: Project, version: ModelVersion | None) -> np.ndarray:
    stored = (version.metrics or {}).get("thresholds") if version is not None else None
    if isinstance(stored, list) and len(stored) == len(project.classes):
        return np.asarray(stored, dtype=np.float64)
    return np.full(len(project.classes), 0.5)


def _r(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else round(x, 4)


# ---------------------------------------------------------------- the three measures
MEASURES = ("held_out", "since_training", "training_fit")
TARGET_F1 = 0.90


@dataclass
class Scored:
    """Labelled images with the probabilities and decision thresholds of one scorer."""

    image_ids: list[int] = field(default_factory=list)
    dataset_ids: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)
    thresholds: list[list[float]] = field(default_factory=list)

    def add(self, image_id: int, dataset_id: int, label: str, probs: list[float], thresholds) -> None:
        self.image_ids.append(image_id)
        self.dataset_ids.append(dataset_id)
        self.labels.append(label)
        self.probs.append(list(probs))
        self.thresholds.append(list(thresholds))

    def only(self, keep: np.ndarray) -> Scored:
        out = Scored()
        for i in np.flatnonzero(keep):
            out.add(self.image_ids[i], self.dataset_ids[i], self.labels[i], self.probs[i], self.thresholds[i])
        return out


def _ready(qs, prefix: str = "image__"):
    return qs.filter(**{f"{prefix}dataset__status": Dataset.Status.READY})


def _fits(project: Project, label: str | None) -> bool:
    if not label:
        return False
    names = label.split() if project.task == Task.MULTILABEL else [label]
    return all(n in project.classes for n in names)


def _held_out(project: Project, version: ModelVersion | None) -> Scored:
    out = Scored()
    qs = _ready(HeldOutScore.objects.filter(image__dataset__project=project, model_version=version))
    for image_id, ds_id, label, probs, thr in qs.order_by("image__dataset_id", "image__index").values_list(
        "image_id", "image__dataset_id", "label", "probabilities", "thresholds"
    ):
        if _fits(project, label):
            out.add(image_id, ds_id, label, probs, thr)
    return out


def _predictions(project: Project, version: ModelVersion | None, image_ids) -> dict[int, list[float]]:
    qs = Prediction.objects.filter(image__dataset__project=project, model_version=version)
    if image_ids is not None:
        qs = qs.filter(image_id__in=list(image_ids))
    return dict(qs.values_list("image_id", "probabilities"))


def _labelled_since(project: Project, since) -> list[tuple[int, int, str]]:
    """(image, dataset, current label) of images with a label given or changed after `since`."""
    qs = _ready(IonImage.objects.filter(dataset__project=project, consensus__isnull=False), prefix="")
    if since is not None:
        qs = qs.filter(labels__updated_at__gt=since)
    rows = qs.distinct().order_by("dataset_id", "index").values_list("pk", "dataset_id", "consensus")
    return [r for r in rows if _fits(project, r[2])]


class _Scorer:
    """Turns stored predictions of one version (or of the default score) into probabilities and
    thresholds as that scorer decided them."""

    def __init__(self, project: Project, version: ModelVersion | None):
        self.project, self.version = project, version
        self.calibration = None
        self.thresholds = thresholds_of(project, version)
        self.fit: DefaultCalibration | None = None
        if version is None:
            self.fit = DefaultCalibration.objects.filter(project=project).first()
            if self.fit is not None:
                self.calibration = self.fit.calibration
                self.thresholds = np.asarray(self.fit.thresholds, dtype=np.float64)

    @property
    def labels_at(self):
        return self.fit.labels_at if self.fit is not None else getattr(self.version, "labels_at", None)

    @property
    def held_out_by(self) -> str:
        if self.version is None:
            return self.fit.held_out_by if self.fit else "unfitted"
        return self.version.held_out_by

    def score(self, rows: list[tuple[int, int, str]]) -> Scored:
        from ionsieve_core.ml.calibration import apply_calibration

        probs = _predictions(self.project, self.version, [r[0] for r in rows])
        rows = [r for r in rows if r[0] in probs]  # images this version never scored are left out
        if self.calibration and rows:  # the default score's Prediction rows hold raw scores
            p0 = apply_calibration(np.array([probs[r[0]][0] for r in rows]), self.calibration)
            probs = {r[0]: [float(p), 1 - float(p)] for r, p in zip(rows, p0, strict=True)}
        out = Scored()
        for image_id, ds_id, label in rows:
            out.add(image_id, ds_id, label, probs[image_id], self.thresholds)
        return out


def scored_sets(project: Project, version: ModelVersion | None) -> tuple[dict[str, Scored], str, object]:
    """The three disjointly defined sets of (image, label, prediction) for one scorer, plus how
    held-out predictions were made and when the training labels were read."""
    scorer = _Scorer(project, version)
    if version is None and scorer.fit is None:
        # Not fitted to any label of this project: every label is held out from it.
        held = scorer.score(_labelled_since(project, None))
        return {"held_out": held, "since_training": Scored(), "training_fit": Scored()}, "unfitted", None
    labels_at = scorer.labels_at
    if labels_at is None:
        # Trained before held-out predictions were kept: what it saw is unknown, so every
        # current label can only count as (optimistic) training fit.
        fit = scorer.score(_labelled_since(project, None))
        return {"held_out": Scored(), "since_training": Scored(), "training_fit": fit}, "", None
    held = _held_out(project, version)
    snapshot = list(zip(held.image_ids, held.dataset_ids, held.labels, strict=True))
    return (
        {
            "held_out": held,
            "since_training": scorer.score(_labelled_since(project, labels_at)),
            "training_fit": scorer.score(snapshot),
        },
        scorer.held_out_by,
        labels_at,
    )


def _arrays(project: Project, s: Scored) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ionsieve_core.ml.metrics import decide, targets

    k = len(project.classes)
    y = targets(s.labels, project.task, project.classes)
    probs = np.asarray(s.probs, dtype=np.float64).reshape(-1, k)
    thresholds = np.asarray(s.thresholds, dtype=np.float64).reshape(-1, k)
    return y, probs, decide(probs, project.task, thresholds)


def measure_of(project: Project, s: Scored) -> dict:
    from ionsieve_core.ml.metrics import measure

    y, probs, pred = _arrays(project, s)
    return measure(y, probs, pred, project.task, project.classes)


def flag(held_out: dict, positive: str | None) -> str | None:
    """Why a PI should not yet trust the held-out figure of a dataset, or None."""
    what = f"F1 of {positive}" if positive else "F1"
    if held_out["n"] == 0:
        return "No held-out labels yet: label images of this dataset and train again."
    if held_out["f1"] is None:
        return (
            f"The {what} cannot be computed: no image here is labelled or predicted {positive}."
            if positive
            else "F1 cannot be computed from these labels."
        )
    if held_out["f1"] < TARGET_F1:
        return f"Held-out {what} is below {TARGET_F1:.2f}."
    ci = held_out.get("f1_ci")
    if ci is None or ci[0] < TARGET_F1:
        return f"Too few labels to tell: the 95% interval of the {what} reaches below {TARGET_F1:.2f}."
    return None


def accuracy(project: Project, version: ModelVersion | None, dataset_id: int | None = None) -> dict:
    """The three measures of one version (None = default score) per dataset and over the
    project, the held-out curves and confusion matrix, and what a PI should know about them."""
    sets, held_out_by, labels_at = scored_sets(project, version)
    names = dict(project.datasets.values_list("pk", "name"))
    ds_ids = sorted({d for s in sets.values() for d in s.dataset_ids})
    if dataset_id is not None:
        ds_ids = [d for d in ds_ids if d == dataset_id]
    positive = project.classes[0] if project.task == Task.BINARY else None
    positive_label = project.class_label(positive) if positive else None
    datasets = []
    for ds in ds_ids:
        row = {"dataset_id": ds, "dataset": names.get(ds, str(ds))}
        for key in MEASURES:
            row[key] = measure_of(project, sets[key].only(np.asarray(sets[key].dataset_ids) == ds))
        row["flag"] = flag(row["held_out"], positive_label)
        datasets.append(row)
    info = version_info(version)
    held = sets["held_out"]
    return {
        "version": info["key"],
        "name": info["name"],
        "task": project.task,
        "classes": list(project.classes),
        "positive": positive,
        "held_out_by": held_out_by,
        "labels_at": labels_at.isoformat() if labels_at else None,
        "all": {key: measure_of(project, sets[key]) for key in MEASURES},
        "datasets": datasets,
        "curves": curves(project, held),
        "confusion": confusion(project, held),
    }


def curves(project: Project, held: Scored) -> list[dict]:
    """ROC and precision-recall curves of the held-out predictions (one per class shown)."""
    if not held.labels:
        return []
    y, probs, _ = _arrays(project, held)
    k = len(project.classes)
    if project.task == Task.MULTILABEL:
        pairs = [(i, y[:, i]) for i in range(k)]
    elif project.task == Task.BINARY:
        pairs = [(0, (y == 0).astype(int))]
    else:
        pairs = [(i, (y == i).astype(int)) for i in range(k)]
    return [_curves(project.classes[i], t, probs[:, i]) for i, t in pairs if 0 < t.sum() < len(t)]


def confusion(project: Project, held: Scored) -> list[list[int]] | None:
    """Confusion matrix of the held-out decisions (rows: human label); None for multi-label."""
    if not held.labels or project.task == Task.MULTILABEL:
        return None
    y, _, pred = _arrays(project, held)
    return skm.confusion_matrix(y, pred, labels=list(range(len(project.classes)))).tolist()


def _curves(name: str, y: np.ndarray, score: np.ndarray) -> dict:
    fpr, tpr, _ = skm.roc_curve(y, score)
    precision, recall, _ = skm.precision_recall_curve(y, score)
    return {
        "class": name,
        "fpr": _round(fpr),
        "tpr": _round(tpr),
        "auc": _r(skm.auc(fpr, tpr)),
        "precision": _round(precision),
        "recall": _round(recall),
        "average_precision": _r(skm.average_precision_score(y, score)),
    }


def _round(a: np.ndarray) -> list[float]:
    return [round(float(x), 5) for x in a]


def compare(project: Project, a: ModelVersion | None, b: ModelVersion | None) -> dict:
    """A minus B on the images both hold out with the same label (paired): F1 and ROC AUC
    differences with bootstrap intervals."""
    from ionsieve_core.ml.metrics import paired_difference

    ha, hb = (scored_sets(project, v)[0]["held_out"] for v in (a, b))
    index_b = {im: (i, lab) for i, (im, lab) in enumerate(zip(hb.image_ids, hb.labels, strict=True))}
    keep_a, keep_b = [], []
    for i, (im, lab) in enumerate(zip(ha.image_ids, ha.labels, strict=True)):
        j = index_b.get(im)
        if j is not None and j[1] == lab:
            keep_a.append(i)
            keep_b.append(j[0])
    sa, sb = Scored(), Scored()
    for src, dst, idx in ((ha, sa, keep_a), (hb, sb, keep_b)):
        for i in idx:
            dst.add(src.image_ids[i], src.dataset_ids[i], src.labels[i], src.probs[i], src.thresholds[i])
    y, pa, da = _arrays(project, sa)
    _, pb, db = _arrays(project, sb)
    out = paired_difference(y, pa, da, pb, db, project.task, project.classes)
    return {"a": version_info(a)["name"], "b": version_info(b)["name"], **out}


def labelled_count(project: Project, dataset_id: int | None = None) -> int:
    qs = IonImage.objects.filter(
        dataset__project=project, dataset__status=Dataset.Status.READY, consensus__isnull=False
    )
    if dataset_id is not None:
        qs = qs.filter(dataset_id=dataset_id)
    return qs.count()


# ---------------------------------------------------------------- annotators
def annotators(project: Project) -> dict:
    """Per annotator: label count, Cohen's kappa with each other annotator on the images both
    labelled, and agreement with the current prediction."""
    rows = (
        Label.objects.filter(
            image__dataset__project=project, image__dataset__status=Dataset.Status.READY, unsure=False
        )
        .exclude(value="")
        .values_list("user__username", "image_id", "value", "image__predicted")
    )
    by_user: dict[str, dict[int, str]] = defaultdict(dict)
    predicted: dict[int, str] = {}
    for name, image_id, value, pred in rows:
        by_user[name][image_id] = value
        predicted[image_id] = pred
    names = sorted(by_user)
    out = []
    for name in names:
        mine = by_user[name]
        compared = [v == predicted[i] for i, v in mine.items() if predicted[i]]
        pairs = {}
        for other in names:
            if other != name:
                pairs[other] = pair_agreement(mine, by_user[other])
        out.append(
            {
                "user": name,
                "labels": len(mine),
                "model_compared": len(compared),
                "model_agreement": _r(np.mean(compared)) if compared else None,
                "pairs": pairs,
            }
        )
    return {"names": names, "annotators": out}


def pair_agreement(a: dict[int, str], b: dict[int, str]) -> dict:
    common = sorted(set(a) & set(b))
    if not common:
        return {"common": 0, "kappa": None, "agreement": None}
    xa, xb = [a[i] for i in common], [b[i] for i in common]
    agreement = float(np.mean([x == y for x, y in zip(xa, xb, strict=True)]))
    kappa = None
    if len(set(xa) | set(xb)) > 1:  # with a single class in play kappa is 0/0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kappa = _r(skm.cohen_kappa_score(xa, xb))
    return {"common": len(common), "kappa": kappa, "agreement": _r(agreement)}


# ---------------------------------------------------------------- one image over time
def probability_history(image: IonImage) -> list[dict]:
    """The image's probabilities from the default score and every model version, oldest first."""
    classes = image.dataset.project.classes
    preds = Prediction.objects.filter(image=image).select_related("model_version")
    rows = []
    for p in preds:
        v = p.model_version
        rows.append(
            {
                "version": v.number if v else None,
                "name": f"v{v.number}" if v else "default",
                "active": bool(v and v.is_active),
                "created_at": p.created_at.isoformat(),
                "probabilities": dict(zip(classes, p.probabilities, strict=False)),
            }
        )
    rows.sort(key=lambda r: (r["version"] is not None, r["version"] or 0))
    return rows


# ---------------------------------------------------------------- the stored cross-validation report
def cv_report(version: ModelVersion) -> dict | None:
    """The cross-validation metrics stored at training time as tables: per class, per dataset
    (groups are named 'd<dataset id>'; shared collections keep their own names) and per fold."""
    m = version.metrics or {}
    overall = m.get("overall")
    if not isinstance(overall, dict) or "per_class" not in overall:
        return None
    names = dict(version.project.datasets.values_list("pk", "name"))

    def group_name(g: str) -> str:
        if g.startswith("d") and g[1:].isdigit():
            return names.get(int(g[1:]), f"dataset {g[1:]} (deleted)")
        return g

    def row(name: str, x: dict) -> dict:
        return {
            "name": name,
            "n": x.get("n"),
            "accuracy": x.get("accuracy"),
            "f1_macro": x.get("f1_macro"),
            "roc_auc": x.get("roc_auc"),
        }

    return {
        "classes": [{"name": c, **v} for c, v in overall["per_class"].items()],
        "overall": row("All", overall),
        "datasets": sorted(
            (row(group_name(g), x) for g, x in (m.get("per_group") or {}).items()),
            key=lambda r: str(r["name"]).lower(),
        ),
        "folds": [
            row(f"Fold {i + 1}", x) for i, x in enumerate(m.get("per_fold") or []) if isinstance(x, dict)
        ],
        "thresholds": m.get("thresholds"),
    }
