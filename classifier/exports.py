"""Predictions and labels as CSV rows (one per image)."""
from __future__ import annotations

import csv
from collections.abc import Iterable

from webapp.datasets.models import IonImage
from webapp.projects.models import Project


def prediction_header(project: Project) -> list[str]:
    return ["dataset_id", "dataset", "index", "mz", "name"] + [f"prob_{c}" for c in project.classes] + [
        "predicted", "label", "model_version"]


def prediction_rows(project: Project, images: Iterable[IonImage]) -> Iterable[list]:
    for im in images:
        probs = im.probabilities or [None] * len(project.classes)
        yield [
            im.dataset_id, im.dataset.name, im.index, "" if im.mz is None else repr(im.mz), im.name,
            *("" if p is None else f"{p:.6f}" for p in probs),
            im.predicted, im.consensus or "",
            im.prediction_version.number if im.prediction_version_id else "",
        ]


def write_predictions(project: Project, out, images=None) -> int:
    if images is None:
        images = (IonImage.objects.filter(dataset__project=project)
                  .select_related("dataset", "prediction_version").order_by("dataset_id", "index"))
    w = csv.writer(out)
    w.writerow(prediction_header(project))
    n = 0
    for row in prediction_rows(project, images.iterator(chunk_size=2000) if hasattr(images, "iterator") else images):
        w.writerow(row)
        n += 1
    return n
