"""The real labelled ion images in ../shared/data/ionimages/ as scalar arrays (test/bench helper).

Read with the app's own image reader (`ionsieve_core.imagesets.images.read_image`, what `import_images`
uses): viridis renders go back to their position on the colour map (0..1), greyscale stays as
stored, transparent pixels and annotations drawn over a render become NaN.

Two sets, never to be mixed in a figure:

- `metaspace_examples` (8 images, expert labels): DEVELOPMENT images. They shaped the
  generator's styles and the shipped default model was kept because its AUC on them rose
  (commit 624489f), so no figure on them is an evaluation.
- `metaspace_model_labelled` (34 images): labelled by METASPACE's own off-sample model, not by
  experts; never used in development. Figures on them measure agreement with that model.

A missing folder raises (FileNotFoundError): a benchmark must not quietly lose a figure.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ionsieve_core.imagesets.images import read_image
from tests.shared_data import SHARED_DATA

IONIMAGES = SHARED_DATA / "ionimages"
EXAMPLES = IONIMAGES / "metaspace_examples"
MODEL_LABELLED = IONIMAGES / "metaspace_model_labelled"
CLASSES = ("off", "on")


@dataclass
class RealSet:
    """Images with labels 0 = off / 1 = on, file names and groups (one per source)."""

    name: str
    role: str  # "development" or "evaluation"
    labelled_by: str
    images: list[np.ndarray]
    labels: np.ndarray
    names: list[str]
    groups: list[str]


def png_to_scalar(path: Path) -> np.ndarray:
    return read_image(path)


def _example_group(file_name: str) -> str:
    # intsco_* come from intsco/off-sample images/, service_test_* from metaspace2020/metaspace
    # off-sample/tests/: two sources.
    return "dev:intsco" if file_name.startswith("intsco") else "dev:metaspace-tests"


def load_examples() -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """(images, labels 0 = off / 1 = on, file names) of the 8 DEVELOPMENT images."""
    s = development_set()
    return s.images, s.labels, s.names


def development_set() -> RealSet:
    images, labels, names, groups = [], [], [], []
    for label, sub in enumerate(CLASSES):
        folder = EXAMPLES / sub
        files = sorted(folder.glob("*.png"))
        if not files:
            raise FileNotFoundError(f"no labelled images in {folder}")
        for p in files:
            images.append(png_to_scalar(p))
            labels.append(label)
            names.append(f"{sub}/{p.name}")
            groups.append(_example_group(p.name))
    return RealSet("metaspace_examples", "development", "experts", images, np.asarray(labels), names, groups)


def _notebook_group(source: str) -> str:
    """One group per source notebook: the images of one notebook come from the few datasets it
    opened, so a notebook's images are never on both sides of a cross-validation split."""
    notebook = next((w for w in source.split() if w.endswith(".ipynb")), None)
    if notebook is None:
        raise ValueError(f"labels.csv: no notebook named in source {source!r}")
    return "eval:" + notebook.rsplit("/", 1)[-1].removesuffix(".ipynb")


def evaluation_set() -> RealSet:
    table = MODEL_LABELLED / "labels.csv"
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise FileNotFoundError(f"{table} lists no images")
    images, labels, names, groups = [], [], [], []
    for row in rows:
        images.append(png_to_scalar(MODEL_LABELLED / row["file"]))
        labels.append(CLASSES.index(row["label"]))
        names.append(row["file"])
        groups.append(_notebook_group(row["source"]))
    return RealSet(
        "metaspace_model_labelled",
        "evaluation",
        "METASPACE's off-sample model (not experts)",
        images,
        np.asarray(labels),
        names,
        groups,
    )
