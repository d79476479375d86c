"""Display scaling of ion images and PNG thumbnails (NaN = not acquired = transparent)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# matplotlib's viridis, 256 RGB entries, embedded so that matplotlib is not a dependency.
_VIRIDIS_HEX = (
    "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467481668"
    "48176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979"
    "472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84"
    "433d84433e85423f854240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a"
    "3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d"
    "355e8d355f8d34608d34618d33628d33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e"
    "2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e"
    "297b8e287c8e287d8e277e8e277f8e27808e26818e26828e26828e25838e25848e25858e24868e24878e23888e"
    "23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b"
    "1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a486"
    "21a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d"
    "2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf70"
    "46c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f"
    "65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d549"
    "89d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32addc30"
    "b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a"
    "d8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723"
    "fde725"
)
_VIRIDIS = np.frombuffer(bytes.fromhex(_VIRIDIS_HEX), dtype=np.uint8).reshape(256, 3)


def _lut(cmap: str) -> np.ndarray:
    if cmap == "viridis":
        return _VIRIDIS
    if cmap in ("gray", "grey", "greys_r"):
        return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    try:  # any other matplotlib map, only when matplotlib happens to be installed
        from matplotlib import colormaps
    except ImportError:
        raise ValueError(f"unknown colour map {cmap!r} (only viridis and gray are built in)")
    rgba = colormaps[cmap](np.linspace(0, 1, 256))
    return (np.asarray(rgba)[:, :3] * 255).round().astype(np.uint8)


def hotspot_clip(img: np.ndarray, q: float = 99) -> np.ndarray:
    """Clip values above the q-th percentile of the non-zero finite pixels.

    A few saturated hotspot pixels otherwise squash the rest of an MSI image to black.
    Zeros are left out of the percentile because they are usually background, not signal.
    """
    a = np.asarray(img, dtype=np.float64)
    vals = a[np.isfinite(a) & (a != 0)]
    if vals.size == 0:
        return a.copy()
    hi = np.percentile(vals, q)
    with np.errstate(invalid="ignore"):
        return np.where(a > hi, hi, a)


def scale(img: np.ndarray, mode: str = "linear") -> np.ndarray:
    """Map an image to 0..1 for display; NaN stays NaN. mode: linear, log or equalized."""
    a = np.asarray(img, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    fin = np.isfinite(a)
    if not fin.any():
        return out
    v = a[fin]
    if mode == "linear":
        lo, hi = v.min(), v.max()
        out[fin] = (v - lo) / (hi - lo) if hi > lo else 0.0
    elif mode == "log":
        lv = np.log1p(np.clip(v - v.min(), 0, None))
        top = lv.max()
        out[fin] = lv / top if top > 0 else 0.0
    elif mode == "equalized":
        # rank transform: each value maps to the fraction of pixels below it (ties share)
        uniq, inverse = np.unique(v, return_inverse=True)
        out[fin] = inverse / (uniq.size - 1) if uniq.size > 1 else 0.0
    else:
        raise ValueError(f"unknown scaling mode {mode!r}")
    return out


def to_thumbnail_png(img: np.ndarray, size: int = 128, cmap: str = "viridis",
                     mode: str = "linear", clip_q: float | None = 99) -> bytes:
    """PNG bytes of a colour-mapped image whose longer side is `size` (aspect kept).

    The image is hotspot-clipped and scaled here; NaN pixels become fully transparent.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError("an image must be a non-empty 2-D array")
    if clip_q is not None:
        a = hotspot_clip(a, clip_q)
    s = scale(a, mode)
    nan = np.isnan(s)
    idx = np.round(np.nan_to_num(s) * 255).astype(np.uint8)
    rgba = np.empty(a.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = _lut(cmap)[idx]
    rgba[..., 3] = np.where(nan, 0, 255)
    rgba[nan, :3] = 0
    h, w = a.shape
    f = size / max(h, w)
    new = (max(1, round(w * f)), max(1, round(h * f)))
    im = Image.fromarray(rgba, "RGBA")
    if f >= 1:
        im = im.resize(new, Image.Resampling.NEAREST)  # keep MSI pixels crisp
    else:
        # premultiplied alpha so that transparent pixels do not bleed black into edges
        im = im.convert("RGBa").resize(new, Image.Resampling.BOX).convert("RGBA")
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
