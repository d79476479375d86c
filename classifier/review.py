"""How well a model version agrees with the current human labels, and how annotators agree.

Numbers come from scikit-learn on the stored Prediction rows (one per image and version; the
default scorer's rows have no version) against each image's consensus label.
"""
from __future__ import annotations

import math
import warnings
from collections import defaultdict

import numpy as np
from django.http import Http404
from sklearn import metrics as skm

from classifier.models import ModelVersion, Prediction
from classifier.services import describe
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
    return {"number": version.number, "key": str(version.number), "name": f"v{version.number} ({version.arch})",
            "active": version.is_active}


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


# ---------------------------------------------------------------- one version vs the labels
def scored_rows(project: Project, version: ModelVersion | None, dataset_id: int | None = None) -> list[tuple]:
    """(dataset_id, dataset name, consensus, probabilities) of every labelled image this version scored."""
    qs = Prediction.objects.filter(
        image__dataset__project=project, image__dataset__status=Dataset.Status.READY,
        image__consensus__isnull=False, model_version=version,
    )
    if dataset_id is not None:
        qs = qs.filter(image__dataset_id=dataset_id)
    rows = qs.order_by("image__dataset_id", "image__index").values_list(
        "image__dataset_id", "image__dataset__name", "image__consensus", "probabilities")
    classes = set(project.classes)
    return [r for r in rows if r[2] and all(c in classes for c in r[2].split())]


def evaluate(project: Project, rows: list[tuple], thresholds: np.ndarray, curves: bool = True) -> dict:
    """Metrics of predictions against consensus labels (rows from `scored_rows`)."""
    classes = project.classes
    k = len(classes)
    out: dict = {"n_labelled": len(rows), "n_disagreements": 0, "precision": None, "recall": None, "f1": None,
                 "accuracy": None, "roc_auc": None, "per_class": {}, "confusion": None, "curves": []}
    if not rows:
        return out
    probs = np.asarray([r[3] for r in rows], dtype=np.float64)
    predicted = [describe(project, p, thresholds)[0] for p in probs]
    multilabel = project.task == Task.MULTILABEL
    if multilabel:
        y_true = np.asarray([[c in r[2].split() for c in classes] for r in rows], dtype=int)
        y_pred = np.asarray([[c in p.split() for c in classes] for p in predicted], dtype=int)
        out["n_disagreements"] = int((y_true != y_pred).any(axis=1).sum())
        p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
        macro = skm.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
        out["precision"], out["recall"], out["f1"] = (_r(x) for x in macro[:3])
        out["accuracy"] = _r(skm.accuracy_score(y_true, y_pred))
        out["roc_auc"] = _safe_auc(y_true, probs, average="macro")
        one_vs_rest = [(i, y_true[:, i]) for i in range(k)]
    else:
        y_true = np.asarray([classes.index(r[2]) for r in rows])
        y_pred = np.asarray([classes.index(p) for p in predicted])
        out["n_disagreements"] = int((y_true != y_pred).sum())
        p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=list(range(k)), zero_division=0)
        if project.task == Task.BINARY:
            # The first class (off-sample by default) is the one the gallery sorts by: report it.
            out["precision"], out["recall"], out["f1"] = _r(p[0]), _r(r[0]), _r(f[0])
            out["roc_auc"] = _safe_auc((y_true == 0).astype(int), probs[:, 0])
            one_vs_rest = [(0, (y_true == 0).astype(int))]
        else:
            macro = skm.precision_recall_fscore_support(y_true, y_pred, labels=list(range(k)), average="macro",
                                                        zero_division=0)
            out["precision"], out["recall"], out["f1"] = (_r(x) for x in macro[:3])
            out["roc_auc"] = _safe_auc(y_true, probs, multi_class="ovr", labels=list(range(k)))
            one_vs_rest = [(i, (y_true == i).astype(int)) for i in range(k)]
        out["accuracy"] = _r(skm.accuracy_score(y_true, y_pred))
        out["confusion"] = skm.confusion_matrix(y_true, y_pred, labels=list(range(k))).tolist()
    out["per_class"] = {c: {"precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]), "support": int(s[i])}
                        for i, c in enumerate(classes)}
    if curves:
        out["curves"] = [_curves(classes[i], y, probs[:, i]) for i, y in one_vs_rest if 0 < y.sum() < len(y)]
    return out


def _safe_auc(y_true, scores, **kw) -> float | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _r(skm.roc_auc_score(y_true, scores, **kw))
    except ValueError:  # one class only: AUC is undefined
        return None


def _curves(name: str, y: np.ndarray, score: np.ndarray) -> dict:
    fpr, tpr, _ = skm.roc_curve(y, score)
    precision, recall, _ = skm.precision_recall_curve(y, score)
    return {"class": name, "fpr": _round(fpr), "tpr": _round(tpr), "auc": _r(skm.auc(fpr, tpr)),
            "precision": _round(precision), "recall": _round(recall),
            "average_precision": _r(skm.average_precision_score(y, score))}


def _round(a: np.ndarray) -> list[float]:
    return [round(float(x), 5) for x in a]


SUMMARY = ("n_labelled", "n_disagreements", "precision", "recall", "f1", "accuracy", "roc_auc")


def review(project: Project, version: ModelVersion | None, dataset_id: int | None = None) -> dict:
    """Overall metrics, per-dataset metrics and curves of one version (None = default score)."""
    thresholds = thresholds_of(project, version)
    rows = scored_rows(project, version, dataset_id)
    by_dataset: dict[int, list[tuple]] = defaultdict(list)
    names: dict[int, str] = {}
    for row in rows:
        by_dataset[row[0]].append(row)
        names[row[0]] = row[1]
    datasets = []
    for ds_id, ds_rows in by_dataset.items():
        m = evaluate(project, ds_rows, thresholds, curves=False)
        datasets.append({"id": ds_id, "name": names[ds_id], **{k: m[k] for k in SUMMARY}})
    return {
        "version": version_info(version),
        "task": project.task,
        "classes": project.classes,
        "thresholds": [round(float(t), 4) for t in thresholds],
        "overall": evaluate(project, rows, thresholds),
        "datasets": datasets,
        "labelled_total": labelled_count(project, dataset_id),
    }


def labelled_count(project: Project, dataset_id: int | None = None) -> int:
    qs = IonImage.objects.filter(dataset__project=project, dataset__status=Dataset.Status.READY,
                                 consensus__isnull=False)
    if dataset_id is not None:
        qs = qs.filter(dataset_id=dataset_id)
    return qs.count()


# ---------------------------------------------------------------- annotators
def annotators(project: Project) -> dict:
    """Per annotator: label count, Cohen's kappa with each other annotator on the images both
    labelled, and agreement with the current prediction."""
    rows = (Label.objects.filter(image__dataset__project=project, image__dataset__status=Dataset.Status.READY,
                                 unsure=False).exclude(value="")
            .values_list("user__username", "image_id", "value", "image__predicted"))
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
        out.append({"user": name, "labels": len(mine), "model_compared": len(compared),
                    "model_agreement": _r(np.mean(compared)) if compared else None, "pairs": pairs})
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
        rows.append({
            "version": v.number if v else None,
            "name": f"v{v.number}" if v else "default",
            "active": bool(v and v.is_active),
            "created_at": p.created_at.isoformat(),
            "probabilities": dict(zip(classes, p.probabilities, strict=False)),
        })
    rows.sort(key=lambda r: (r["version"] is not None, r["version"] or 0))
    return rows
