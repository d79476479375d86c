"""A project, a dataset or a selection as a .zip in the import layouts, so it re-imports as is.

Inside: the images (16-bit PNG scaled to their own range; multi-channel as TIFF), the layout's
labels, `scales.csv` (each PNG's value range), `predictions.csv`, and for binary on/off projects
a METASPACE-style `GS.csv`. Optionally each dataset's array file.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ionsieve_core.imagesets.writer import (
    safe_name,
    write_channels_layout,
    write_flat_layout,
    write_gs_layout,
    write_scales_csv,
)
from webapp.datasets.arrays import arrays_for
from webapp.datasets.models import IonImage
from webapp.projects.models import Project, Task

LAYOUTS = ("gs", "flat", "channels")


class ExportError(ValueError):
    pass


def default_layout(project: Project) -> str:
    if project.channels:
        return "channels"
    return "flat" if project.task == Task.MULTILABEL else "gs"


def check_layout(layout: str, task: str) -> None:
    if layout not in LAYOUTS:
        raise ExportError(f"Unknown layout '{layout}': choose gs, flat or channels.")
    if layout == "gs" and task == Task.MULTILABEL:
        raise ExportError("Folders per label cannot hold several labels per image: use the flat layout.")


def export_zip(
    project: Project,
    images,
    out: Path,
    layout: str | None = None,
    with_arrays: bool = False,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Write the project's `images` to the zip `out` (atomically); returns the number of images.
    `progress(fraction)` is called as it goes (export jobs show it with the time left)."""
    progress = progress or (lambda fraction: None)
    layout = layout or default_layout(project)
    check_layout(layout, project.task)
    images = list(images.select_related("dataset", "prediction_version").order_by("dataset_id", "index"))
    if not images:
        raise ExportError("No images to export.")
    groups: dict[int, list[IonImage]] = {}
    for im in images:
        groups.setdefault(im.dataset_id, []).append(im)
    datasets = []
    for n, ims in enumerate(groups.values()):
        progress(0.5 * n / len(groups))  # reading the arrays: the first half
        arrays, _ = arrays_for(ims[0].dataset, ims)
        datasets.append(
            (
                ims[0].dataset.name,
                [
                    (im.name or im.display_name, a, im.consensus.split() if im.consensus else [])
                    for im, a in zip(ims, arrays, strict=True)
                ],
            )
        )

    def extra(root: Path) -> None:
        _write_predictions(project, images, root / "predictions.csv")
        if project.task == Task.BINARY and set(project.classes) == {"on", "off"}:
            _write_gs_csv(images, root / "GS.csv")
        if with_arrays:
            for ims in groups.values():
                ds = ims[0].dataset
                if ds.array_path.exists():
                    shutil.copyfile(ds.array_path, root / f"{safe_name(ds.name)}.ion_images.npy")

    write_layout_zip(
        out,
        datasets,
        layout,
        project.channels or [],
        project.classes,
        extra,
        progress=lambda f: progress(0.5 + 0.5 * f),
    )
    return len(images)


def write_layout_zip(
    out: Path,
    datasets: list,
    layout: str,
    channels: list[str],
    classes: list[str],
    extra=None,
    progress: Callable[[float], None] | None = None,
) -> None:
    """`datasets`: [(dataset name, [(item name, array, labels), ...]), ...] -> a zip at `out`."""
    work = Path(tempfile.mkdtemp(prefix="ionsieve-export-"))
    try:
        root = work / "export"
        try:
            if layout == "gs":
                rows = write_gs_layout(root, datasets)
            elif layout == "flat":
                rows = write_flat_layout(root, datasets)
            else:
                rows = write_channels_layout(root, datasets, channels or _channel_names(datasets), classes)
        except ValueError as exc:  # the writers explain what does not fit the layout
            raise ExportError(str(exc)) from None
        write_scales_csv(root / "scales.csv", rows)
        if extra is not None:
            extra(root)
        tmp = out.with_name(out.name + ".part")
        files = [path for path in sorted(root.rglob("*")) if path.is_file()]
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for n, path in enumerate(files):
                z.write(path, path.relative_to(root).as_posix())
                if progress is not None and n % 50 == 0:
                    progress(0.2 + 0.8 * n / len(files))  # writing the images took the first fifth
        tmp.replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _channel_names(datasets: list) -> list[str]:
    """ch1, ch2, ... when the project names no channels; single-channel images cannot use this layout."""
    first = datasets[0][1][0][1]
    if first.ndim != 3:
        raise ExportError("The channels layout is for multi-channel images: use gs or flat.")
    return [f"ch{i + 1}" for i in range(first.shape[2])]


def _write_predictions(project: Project, images: list[IonImage], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        write_predictions(project, f, images)


# ---------------------------------------------------------------- predictions CSV
def prediction_header(project: Project) -> list[str]:
    return (
        ["dataset_id", "dataset", "index", "mz", "name"]
        + [f"prob_{c}" for c in project.classes]
        + ["predicted", "label", "model_version"]
    )


def prediction_rows(project: Project, images: Iterable[IonImage]) -> Iterable[list]:
    for im in images:
        probs = im.probabilities or [None] * len(project.classes)
        yield [
            im.dataset_id,
            im.dataset.name,
            im.index,
            "" if im.mz is None else repr(im.mz),
            im.name,
            *("" if p is None else f"{p:.6f}" for p in probs),
            im.predicted,
            im.consensus or "",
            im.prediction_version.number if im.prediction_version_id else "",
        ]


def write_predictions(project: Project, out, images=None) -> int:
    if images is None:
        images = (
            IonImage.objects.filter(dataset__project=project)
            .select_related("dataset", "prediction_version")
            .order_by("dataset_id", "index")
        )
    w = csv.writer(out)
    w.writerow(prediction_header(project))
    n = 0
    for row in prediction_rows(
        project, images.iterator(chunk_size=2000) if hasattr(images, "iterator") else images
    ):
        w.writerow(row)
        n += 1
    return n


def _write_gs_csv(images: list[IonImage], path: Path) -> None:
    """METASPACE off-sample gold standard: one row per labelled ion."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["datasetId", "dsName", "sumFormula", "adduct", "type"])
        for im in images:
            if im.consensus in ("on", "off"):
                w.writerow([im.dataset_id, im.dataset.name, im.formula or im.name, im.adduct, im.consensus])
