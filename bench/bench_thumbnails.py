"""Thumbnail benchmark: the stack renderer used by ingestion against the former per-image loop.

    python bench/bench_thumbnails.py [--pixels 18000 --ions 400 --size 128]

Generates a processed-mode synthetic dataset (as `import_imzml` sees it: the top `--ions`
peaks of the mean spectrum, extracted with `ionsieve_core.msi`), then renders every ion image to a
128 px PNG thumbnail twice, in the same process:

  before   the former `to_thumbnail_png` loop, one image at a time (frozen copy below):
           hotspot clip, scale, colour-map, PIL resize, PNG at zlib level 6
  after    `iter_thumbnails_png` over the whole stack: one sort for the percentiles, one
           scaling pass, box-filter resize as two matrix products, colour lookup, PNG at
           zlib level 1

Prints both times, their ratio, the PNG bytes, and how far the two sets of pixels differ.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ionsieve_core.imaging.colormaps import lut_8bit as _lut  # noqa: E402
from ionsieve_core.imaging.scaling import hotspot_clip, scale  # noqa: E402
from ionsieve_core.imaging.thumbnails import iter_thumbnails_png  # noqa: E402
from ionsieve_core.msi import extract, read_metadata, top_peaks  # noqa: E402
from ionsieve_core.msi.synthetic import write_synthetic_imzml  # noqa: E402


def before_to_thumbnail_png(img: np.ndarray, size: int = 128) -> bytes:
    """The per-image renderer as it was before the stack renderer (commit 77063ed)."""
    a = np.asarray(img, dtype=np.float64)
    a = hotspot_clip(a, 99)
    s = scale(a, "linear")
    nan = np.isnan(s)
    idx = np.round(np.nan_to_num(s) * 255).astype(np.uint8)
    rgba = np.empty(a.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = _lut("viridis")[idx]
    rgba[..., 3] = np.where(nan, 0, 255)
    rgba[nan, :3] = 0
    h, w = a.shape
    f = size / max(h, w)
    new = (max(1, round(w * f)), max(1, round(h * f)))
    im = Image.fromarray(rgba, "RGBA")
    if f >= 1:
        im = im.resize(new, Image.Resampling.NEAREST)
    else:
        im = im.convert("RGBa").resize(new, Image.Resampling.BOX).convert("RGBA")
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _pixels(pngs: list[bytes]) -> np.ndarray:
    """What is seen: colour times opacity, and the opacity (hidden colours do not count)."""
    rgba = np.stack([np.asarray(Image.open(io.BytesIO(p)).convert("RGBA")) for p in pngs])
    rgba = rgba.astype(np.float64)
    rgba[..., :3] *= rgba[..., 3:] / 255
    return np.rint(rgba)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pixels", type=int, default=18_000)
    ap.add_argument("--ions", type=int, default=400)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs of each")
    args = ap.parse_args()

    w = math.ceil(math.sqrt(args.pixels * 5 / 4))  # a 4:5 section, like most acquisitions
    h = math.ceil(args.pixels / w)
    with tempfile.TemporaryDirectory(prefix="ionsieve_thumbs_") as tmp:
        truth = write_synthetic_imzml(
            Path(tmp) / "t",
            h,
            w,
            n_on=20,
            n_off=20,
            peaks_per_spectrum_noise=100,
            non_rectangular=True,
            seed=0,
        )
        meta = read_metadata(truth.imzml_path)
        mzs = top_peaks(*extract(meta, np.empty(0)).mean_spectrum, n=args.ions)
        images = extract(meta, mzs).images
    k = images.shape[0]
    print(
        f"{k} ion images of {h} x {w} = {h * w:,} pixels (non-rectangular, NaN outside), "
        f"thumbnails {args.size} px"
    )

    def best(fn) -> tuple[float, list[bytes]]:  # noqa: ANN001
        times, out = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    t_before, png_before = best(lambda: [before_to_thumbnail_png(im, args.size) for im in images])
    t_after, png_after = best(lambda: list(iter_thumbnails_png(images, size=args.size)))
    a, b = _pixels(png_before).astype(int), _pixels(png_after).astype(int)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a - b)
    print(f"{'':28}{'total s':>10}{'ms/image':>10}{'KiB/image':>11}")
    for name, t, pngs in (
        ("before: per-image loop", t_before, png_before),
        ("after: stack renderer", t_after, png_after),
    ):
        kib = sum(map(len, pngs)) / len(pngs) / 1024
        print(f"{name:28}{t:10.3f}{1000 * t / k:10.2f}{kib:11.1f}")
    print(f"before / after = {t_before / t_after:.1f}x")
    print(
        f"pixels: mean |difference| {diff.mean():.2f} of 255 per channel, "
        f"{(diff.max(axis=-1) > 8).mean() * 100:.2f}% of pixels differ by more than 8 "
        "(after averages values before colour-mapping, before averaged colours)"
    )


if __name__ == "__main__":
    main()
