"""Writing datasets back to disk in the three layouts `plan_import` reads (export).

Every writer puts each dataset in its own folder `out_root/<dataset>/`, so that
`plan_import(out_root)` gives back the same dataset names, item names and labels (a lone dataset
folder is looked through as a wrapper and still named after itself). Single-channel images are
16-bit PNGs scaled to their own range (the scale goes to the returned rows, for a scales CSV);
multi-channel images in the gold-standard and flat layouts are float32 multi-page TIFFs (one page
per channel, values kept).

`datasets`: an iterable of `(dataset_name, items)`, items an iterable of
`(item_name, image, labels: list[str])`, the image an array (h, w) or (h, w, c), a file path, or a
list of paths or arrays, one per channel (so a plan's `ImageItem.paths` can be exported as is).
Each writer returns rows `(dataset, file, label, min, max)`, `file` relative to `out_root`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ionsieve_core.imagesets.images import read_image

ImageLike = np.ndarray | str | Path | list[str | Path | np.ndarray]
Item = tuple[str, ImageLike, list[str]]
Datasets = Iterable[tuple[str, Iterable[Item]]]
ScaleRow = tuple[str, str, str, float, float]
UNLABELLED_FOLDER = "unlabelled"
_UNSAFE = re.compile(r'(?:[\x00-\x1f\x7f/\\:*?"<>|]|\.\.)+')  # separators, "..", control and Windows-reserved


def safe_name(name: str, fallback: str = "unnamed") -> str:
    """A file or folder name that cannot escape its folder or upset a file system."""
    clean = _UNSAFE.sub("_", str(name)).strip().strip(".").strip()
    return clean[:150] or fallback  # leaves room for `_<channel>.tiff` within 255 bytes


def _unique(name: str, taken: set[str]) -> str:
    """Names that collide once sanitised (or differ only in case) get -2, -3, ..."""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{name}-{n}"
    taken.add(candidate.casefold())
    return candidate


def write_png(array: np.ndarray, path: str | Path, mode: str = "16bit") -> dict[str, float]:
    """A float (h, w) image as a greyscale PNG scaled to its own finite min..max (NaN -> 0).

    `mode` "16bit" (default, mode I;16) or "8bit" (mode L, for previews: 1/255 steps only).
    Returns {"min": .., "max": ..}: value = min + png / top * (max - min), top = 65535 (or 255),
    restores the data to one step of its range. An image without finite values has min = max = 0.
    """
    if mode not in ("16bit", "8bit"):
        raise ValueError(f"mode is '16bit' or '8bit', not {mode!r}")
    a = np.asarray(array, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"write_png takes a (h, w) image, not shape {a.shape}")
    dtype, top = (np.uint16, 65535) if mode == "16bit" else (np.uint8, 255)
    finite = np.isfinite(a)
    lo = float(a[finite].min()) if finite.any() else 0.0
    hi = float(a[finite].max()) if finite.any() else 0.0
    scaled = np.zeros(a.shape, dtype=dtype)
    if hi > lo:
        scaled[finite] = np.round((a[finite] - lo) / (hi - lo) * top).astype(dtype)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scaled).save(path, format="PNG")  # uint16 -> mode I;16, uint8 -> mode L
    return {"min": lo, "max": hi}


def _write_tiff(array: np.ndarray, path: Path) -> dict[str, float]:
    """(h, w, c) as float32 TIFF, one page per channel (read_image reads pages as channels)."""
    import tifffile

    a = np.asarray(array, dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        path, np.ascontiguousarray(np.moveaxis(a, -1, 0)), photometric="minisblack", metadata=None
    )
    finite = np.isfinite(a)
    return {
        "min": float(a[finite].min()) if finite.any() else 0.0,
        "max": float(a[finite].max()) if finite.any() else 0.0,
    }


def as_array(image: ImageLike) -> np.ndarray:
    """An item's image as an array: arrays as they are, files read with read_image, a list (one
    entry per channel) stacked along the last axis."""
    if isinstance(image, str | Path):
        return read_image(image)
    if isinstance(image, list | tuple):
        planes = [as_array(x) for x in image]
        if len(planes) == 1:
            return planes[0]
        if any(p.ndim != 2 for p in planes) or len({p.shape for p in planes}) != 1:
            shapes = ", ".join(str(p.shape) for p in planes)
            raise ValueError(f"channels must be single images of one size, got {shapes}")
        return np.stack(planes, axis=-1)
    return np.asarray(image)


def _write_one(array: ImageLike, folder: Path, stem: str) -> tuple[Path, dict[str, float]]:
    a = as_array(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        path = folder / f"{stem}.png"
        return path, write_png(a, path)
    if a.ndim == 3:
        path = folder / f"{stem}.tif"
        return path, _write_tiff(a, path)
    raise ValueError(f"{stem}: images are (h, w) or (h, w, c), not shape {a.shape}")


def _row(out_root: Path, dataset: str, path: Path, labels: list[str], scale: dict[str, float]) -> ScaleRow:
    return (
        dataset,
        path.relative_to(out_root).as_posix(),
        " ".join(labels),
        scale["min"],
        scale["max"],
    )


def write_gs_layout(out_root: str | Path, datasets: Datasets) -> list[ScaleRow]:
    """`<dataset>/<label>/<item>.png`; unlabelled items go to `<dataset>/unlabelled/`. One label per
    image (the folder), so multi-label items raise ValueError: use the flat layout for those."""
    out_root = Path(out_root)
    rows: list[ScaleRow] = []
    taken_ds: set[str] = set()
    for ds_name, items in datasets:
        folder = out_root / _unique(safe_name(ds_name, "dataset"), taken_ds)
        taken: set[str] = set()  # item names are unique per dataset, across its label folders
        for name, array, labels in items:
            if len(labels) > 1:
                raise ValueError(
                    f"{name} has several labels ({' '.join(labels)}); the gold-standard layout "
                    "holds one per image (use the flat layout)"
                )
            sub = safe_name(labels[0], "label") if labels else UNLABELLED_FOLDER
            path, scale = _write_one(array, folder / sub, _unique(safe_name(name), taken))
            rows.append(_row(out_root, ds_name, path, list(labels), scale))
    return rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_flat_layout(out_root: str | Path, datasets: Datasets) -> list[ScaleRow]:
    """`<dataset>/<item>.png` and `<dataset>/labels.csv` (`file,label`, several labels
    space-separated, empty for unlabelled items)."""
    out_root = Path(out_root)
    rows: list[ScaleRow] = []
    taken_ds: set[str] = set()
    for ds_name, items in datasets:
        folder = out_root / _unique(safe_name(ds_name, "dataset"), taken_ds)
        folder.mkdir(parents=True, exist_ok=True)
        taken: set[str] = set()
        labels_rows: list[list[str]] = []
        for name, array, labels in items:
            path, scale = _write_one(array, folder, _unique(safe_name(name), taken))
            labels_rows.append([path.name, " ".join(labels)])
            rows.append(_row(out_root, ds_name, path, list(labels), scale))
        _write_csv(folder / "labels.csv", ["file", "label"], labels_rows)
    return rows


def write_channels_layout(
    out_root: str | Path, datasets: Datasets, channels: list[str], classes: list[str] | None = None
) -> list[ScaleRow]:
    """`<dataset>/<id>_<channel>.png` (one 16-bit PNG per channel, each scaled to its own range)
    and `<dataset>/labels.csv` (`Id,Target`). Target holds class names, space-separated (names
    rather than HPA-style indices, so the file reads the same whatever the class order);
    `classes`, when given, is checked: a label outside it raises ValueError."""
    out_root = Path(out_root)
    chans = [safe_name(c, "channel").replace("_", "-") for c in channels]  # `_` would split the id
    if not chans or len({c.lower() for c in chans}) != len(chans):
        raise ValueError(f"channels must be distinct names, got {channels}")
    rows: list[ScaleRow] = []
    taken_ds: set[str] = set()
    for ds_name, items in datasets:
        folder = out_root / _unique(safe_name(ds_name, "dataset"), taken_ds)
        folder.mkdir(parents=True, exist_ok=True)
        taken: set[str] = set()
        labels_rows: list[list[str]] = []
        for name, array, labels in items:
            a = as_array(array)
            a = a[..., None] if a.ndim == 2 else a
            if a.ndim != 3 or a.shape[2] != len(chans):
                raise ValueError(
                    f"{name}: {a.shape} does not hold the {len(chans)} channels {', '.join(channels)}"
                )
            unknown = [lab for lab in labels if classes is not None and lab not in classes]
            if unknown:
                raise ValueError(
                    f"{name}: {', '.join(unknown)} not among the classes {', '.join(classes or [])}"
                )
            ident = _unique(safe_name(name), taken)
            for k, ch in enumerate(chans):
                path = folder / f"{ident}_{ch}.png"
                rows.append(_row(out_root, ds_name, path, list(labels), write_png(a[..., k], path)))
            labels_rows.append([ident, " ".join(labels)])
        _write_csv(folder / "labels.csv", ["Id", "Target"], labels_rows)
    return rows


def write_scales_csv(path: str | Path, rows: Iterable[ScaleRow]) -> None:
    """The rows returned by a writer as `dataset,file,label,min,max`."""
    _write_csv(
        Path(path),
        ["dataset", "file", "label", "min", "max"],
        [[d, f, lab, repr(float(lo)), repr(float(hi))] for d, f, lab, lo, hi in rows],
    )
