"""Labelled synthetic ion images with known truth, one synthetic "dataset" at a time.

A dataset is a tissue section on a slide: a tissue mask (blobs / ellipses with noisy borders;
sometimes a section covering most of the slide with background only in the corners or on one
side, sometimes a thin background ring, sometimes the whole grid), on-sample ions (structure
inside the tissue: gradients, sub-regions, hotspots, speckles, dark veins, weak noisy ones, a
few thin rims at the tissue edge) and off-sample ions (matrix background with dark tissue,
thick diffuse halos and matrix rings around the tissue, delocalised analytes, gradients across
the slide, ion suppression on the tissue). Then what real acquisitions add: shot and chemical
noise, detection limits, hot pixels, salt pixels off the tissue, baselines (low contrast),
row stripes, contrast (gamma) changes, NaN outside a non-rectangular acquisition.

What the 8 labelled METASPACE examples taught (looked at, not fitted): a bright halo around
dark tissue is off-sample, so "bright at the tissue edge" must not mean on-sample by itself;
real on-sample rims are thin, ragged and come with structure inside the tissue.

Class 0 = "off", class 1 = "on", as galleries sort by the first class. hard=True makes
harder datasets (more noise, leaks both ways, stripes, baselines, weak and ambiguous styles)
for an honest held-out check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import distance_transform_edt
from skimage.filters import gaussian
from skimage.transform import resize

CLASSES = ["off", "on"]
ON_STYLES = (
    "gradient",
    "subregion",
    "hotspots",
    "speckles",
    "weak",
    "texture",
    "uniform",
    "veins",
    "rim_thin",
)
# A thin rim is real but rare; drawn much less often so "edge-bright" stays ambiguous.
ON_P = np.array([1, 1, 1, 1, 0.8, 1.2, 0.8, 1, 0.25])
OFF_STYLES = (
    "matrix",
    "halo",
    "halo_thick",
    "matrix_ring",
    "bright_surround",
    "delocalised",
    "slide_gradient",
    "suppressed",
    "matrix_clusters",
    "partial_bg",
)
OFF_P = np.array([1.2, 1, 1.3, 0.8, 1.2, 0.8, 0.6, 0.6, 0.8, 0.7])
# Datasets without any background still have off-sample ions: instrument/slide artefacts.
OFF_STYLES_NO_BG = ("slide_gradient", "noise_only", "edge_stripe")
MODES = ("blobs", "ring", "full", "cover", "side")
MODE_P = (0.55, 0.1, 0.07, 0.16, 0.12)


@dataclass
class SyntheticDataset:
    images: np.ndarray  # (k, h, w) float32, NaN outside the acquired area
    labels: np.ndarray  # (k,) int, 0 = off, 1 = on
    kinds: list[str]
    tic: np.ndarray  # (h, w) float32, NaN outside the acquired area
    tissue: np.ndarray  # bool (h, w)
    acquired: np.ndarray  # bool (h, w)
    has_background: bool


@dataclass
class SyntheticData:
    images: list[np.ndarray]
    labels: np.ndarray
    groups: np.ndarray
    tics: dict[str, np.ndarray]
    datasets: dict[str, SyntheticDataset] = field(default_factory=dict)
    classes: list[str] = field(default_factory=lambda: list(CLASSES))

    def contexts(self) -> list[np.ndarray]:
        """The TIC of each image's dataset, cropped to the image (as the web app does)."""
        return [
            self.tics[g][: a.shape[0], : a.shape[1]] for a, g in zip(self.images, self.groups, strict=True)
        ]


def _field(h: int, w: int, rng: np.random.Generator, cells: int) -> np.ndarray:
    """A smooth random field in 0..1."""
    f = resize(rng.random((cells, cells)), (h, w), order=3, mode="reflect", anti_aliasing=False)
    f -= f.min()
    return f / max(f.max(), 1e-9)


def _tissue(h: int, w: int, rng: np.random.Generator, mode: str) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if mode == "full":
        return np.ones((h, w), bool)
    if mode == "ring":  # tissue nearly fills the grid: a thin background ring at the border
        r = rng.uniform(1, max(2, min(h, w) / 12))
        d = np.minimum(np.minimum(yy, h - 1 - yy), np.minimum(xx, w - 1 - xx))
        return d >= r + 2.5 * _field(h, w, rng, 10)  # a noisy inner border
    if mode == "cover":  # a big section cut by the acquisition: background in the corners only
        ry, rx = h * rng.uniform(0.5, 0.62), w * rng.uniform(0.5, 0.62)
        cy, cx = h * rng.uniform(0.45, 0.55), w * rng.uniform(0.45, 0.55)
        r2 = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        return r2 + 0.15 * _field(h, w, rng, 8) <= 1.0
    if mode == "side":  # the section covers one part of the slide (half-covered acquisition)
        a = rng.uniform(0, 2 * np.pi)
        g = (np.cos(a) * (xx - w / 2) / w + np.sin(a) * (yy - h / 2) / h) + 0.15 * _field(h, w, rng, 6)
        return g <= np.quantile(g, rng.uniform(0.4, 0.75))
    score = np.full((h, w), np.inf)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = h * rng.uniform(0.25, 0.75), w * rng.uniform(0.25, 0.75)
        ry, rx = h * rng.uniform(0.12, 0.4), w * rng.uniform(0.12, 0.4)
        a = rng.uniform(0, np.pi)
        dy, dx = (yy - cy) / ry, (xx - cx) / rx
        r2 = (dy * np.cos(a) + dx * np.sin(a)) ** 2 + (dx * np.cos(a) - dy * np.sin(a)) ** 2
        score = np.minimum(score, r2)
    score = score + rng.uniform(0.2, 0.8) * _field(h, w, rng, int(rng.integers(4, 10)))
    return score <= np.quantile(score, rng.uniform(0.2, 0.65))


def _acquired(h: int, w: int, rng: np.random.Generator, tissue: np.ndarray) -> np.ndarray:
    if rng.random() > 0.3:
        return np.ones((h, w), bool)
    yy, xx = np.mgrid[0:h, 0:w]
    if rng.random() < 0.5:  # an ellipse-ish region drawn around the tissue
        acq = ((yy - h / 2) / (0.62 * h)) ** 2 + ((xx - w / 2) / (0.62 * w)) ** 2 <= 1
    else:  # ragged row ends
        acq = np.ones((h, w), bool)
        left = (rng.random(h) * w / 6).astype(int)
        right = (rng.random(h) * w / 6).astype(int)
        acq &= (xx >= left[:, None]) & (xx < (w - right)[:, None])
    return acq | tissue


@dataclass
class _Geometry:
    """Per-dataset geometry shared by all ions: masks and distances (computed once)."""

    t: np.ndarray  # tissue, bool
    soft: np.ndarray  # tissue with a soft edge, 0..1
    acq: np.ndarray  # acquired, bool
    d_out: np.ndarray  # px from the tissue, outside it (0 inside)
    d_in: np.ndarray  # px from the background, inside the tissue (0 outside)


def _geometry(t: np.ndarray, acq: np.ndarray, rng: np.random.Generator) -> _Geometry:
    soft = gaussian(t.astype(float), rng.uniform(0.5, 1.5))
    d_out = distance_transform_edt(~t) if (~t).any() and t.any() else np.zeros(t.shape)
    d_in = distance_transform_edt(t) if (~t).any() else np.full(t.shape, float(max(t.shape)))
    return _Geometry(t, soft, acq, d_out, d_in)


def _on_pattern(style: str, h: int, w: int, g: _Geometry, rng: np.random.Generator) -> np.ndarray:
    t, soft = g.t, g.soft
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    if style == "gradient":
        a = rng.uniform(0, 2 * np.pi)
        gr = np.cos(a) * xx + np.sin(a) * yy
        return (gr - gr.min() + 0.15) * soft
    if style == "subregion":
        return (0.1 + (_field(h, w, rng, int(rng.integers(4, 12))) > rng.uniform(0.4, 0.75))) * soft
    if style == "hotspots":
        img = rng.uniform(0.05, 0.3) * soft * (0.5 + _field(h, w, rng, 10))
        ty, tx = np.nonzero(t)
        for _ in range(int(rng.integers(2, 10))):
            j = int(rng.integers(0, ty.size))
            s = rng.uniform(0.008, 0.05)
            img = (
                img
                + rng.uniform(0.3, 1)
                * np.exp(-((yy - ty[j] / max(h, w)) ** 2 + (xx - tx[j] / max(h, w)) ** 2) / (2 * s * s))
                * t
            )
        return img
    if style == "speckles":
        return (rng.random((h, w)) < rng.uniform(0.05, 0.5)) * soft * rng.uniform(0.3, 1, (h, w))
    if style == "weak":
        return soft * rng.uniform(0.2, 0.6) * (0.7 + 0.3 * _field(h, w, rng, 8))
    if style == "texture":
        return (0.2 + _field(h, w, rng, int(rng.integers(8, 20)))) * soft
    if style == "veins":  # bright tissue with dark channels (vessels, ventricles)
        f = _field(h, w, rng, int(rng.integers(6, 14)))
        veins = np.abs(f - rng.uniform(0.3, 0.7)) < rng.uniform(0.03, 0.1)
        return (0.5 + 0.5 * _field(h, w, rng, 6)) * soft * np.where(veins, rng.uniform(0.05, 0.4), 1.0)
    if style == "rim_thin":  # enriched in a thin ragged band just inside the tissue edge,
        # with structure further in: thin (1-3 px) and inside, unlike a halo
        band = np.exp(-np.maximum(g.d_in - 1, 0) / rng.uniform(0.8, 2.5)) * t
        band = band * (0.3 + _field(h, w, rng, int(rng.integers(10, 25))))
        inner = (
            (_field(h, w, rng, int(rng.integers(4, 9))) > rng.uniform(0.55, 0.75))
            * soft
            * rng.uniform(0.4, 1)
        )
        return band + inner + 0.05 * soft
    return soft * (0.8 + 0.2 * _field(h, w, rng, 4))


def _off_pattern(style: str, h: int, w: int, g: _Geometry, rng: np.random.Generator) -> np.ndarray:
    t, soft, acq = g.t, g.soft, g.acq
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    bg = (1 - soft) * acq
    dark = rng.uniform(0.0, 0.3)  # what is left of the ion on the tissue (suppressed, not zero)
    if style == "matrix":
        return bg * (0.6 + 0.4 * _field(h, w, rng, int(rng.integers(3, 8)))) + dark * 0.5 * soft
    if style == "matrix_clusters":
        return bg * (rng.random((h, w)) < rng.uniform(0.2, 0.7)) * rng.uniform(0.3, 1, (h, w))
    if style == "bright_surround":  # dark tissue in a bright, grainy matrix (+ blobs at the edge)
        img = bg * (0.5 + 0.5 * rng.random((h, w))) + dark * soft * (0.7 + 0.3 * _field(h, w, rng, 10))
        near = (g.d_out > 0) & (g.d_out < rng.uniform(3, 10))
        ys, xs = np.nonzero(near)
        for _ in range(int(rng.integers(0, 4)) if ys.size else 0):
            j = int(rng.integers(0, ys.size))
            s = rng.uniform(0.01, 0.04)
            img = (
                img
                + np.exp(-((yy - ys[j] / max(h, w)) ** 2 + (xx - xs[j] / max(h, w)) ** 2) / (2 * s * s)) * bg
            )
        return img
    if style == "halo":
        sigma = rng.uniform(1.5, max(2.0, min(h, w) / 10))
        ring = gaussian(t.astype(float), sigma) * (1 - t)
        return ring / max(ring.max(), 1e-9) + 0.05 * bg + dark * 0.3 * soft
    if style == "halo_thick":  # a wide diffuse halo fading away from dark tissue
        length = rng.uniform(0.04, 0.2) * min(h, w) + 2
        ring = np.exp(-g.d_out / length) * (g.d_out > 0) * acq
        ring = ring * (0.6 + 0.4 * _field(h, w, rng, int(rng.integers(6, 16))))
        return ring + dark * soft * (0.6 + 0.4 * _field(h, w, rng, 8))
    if style == "matrix_ring":  # a ring of matrix at some distance around the tissue
        d0 = rng.uniform(1, 0.15 * min(h, w) + 2)
        width = rng.uniform(1.5, 0.08 * min(h, w) + 2)
        ring = np.exp(-((g.d_out - d0) ** 2) / (2 * width * width)) * (g.d_out > 0) * acq
        return ring * (0.6 + 0.4 * _field(h, w, rng, 12)) + 0.1 * bg + dark * 0.3 * soft
    if style == "partial_bg":  # matrix only in part of the background (a corner, a side)
        a = rng.uniform(0, 2 * np.pi)
        gr = np.cos(a) * xx + np.sin(a) * yy
        gr = (gr - gr.min()) / max(np.ptp(gr), 1e-9)
        return bg * np.clip((gr - rng.uniform(0.2, 0.6)) * 4, 0, 1) + dark * 0.3 * soft
    if style == "delocalised":  # an analyte that spread off the tissue, strongest outside
        spread = gaussian(t.astype(float), rng.uniform(3, max(4.0, min(h, w) / 5)))
        return spread * (1 - 0.7 * t) + 0.2 * bg
    if style == "slide_gradient":
        a = rng.uniform(0, 2 * np.pi)
        gr = np.cos(a) * xx + np.sin(a) * yy
        gr = (gr - gr.min()) / max(np.ptp(gr), 1e-9)
        return (0.1 + gr) * (1 - rng.uniform(0.2, 0.7) * soft)
    if style == "suppressed":
        return np.ones((h, w)) * (1 - rng.uniform(0.6, 0.95) * soft)
    if style == "noise_only":
        return rng.random((h, w)) * 0.3
    # edge_stripe: an artefact along one side of the acquisition
    side = int(rng.integers(0, 4))
    d = [yy, 1 - yy, xx, 1 - xx][side]
    return np.exp(-d / rng.uniform(0.03, 0.1))


def _row_gain(h: int, rng: np.random.Generator) -> np.ndarray:
    """Row stripes (line-scan instruments): bands of rows with a different gain."""
    gain = np.ones(h)
    for _ in range(int(rng.integers(1, 6))):
        y0 = int(rng.integers(0, h))
        gain[y0 : y0 + int(rng.integers(1, max(2, h // 6)))] *= rng.uniform(0.4, 1.8)
    return gain * (1 + 0.05 * rng.standard_normal(h))


def _ion_kinds(
    rng: np.random.Generator, n_ions: int, off_fraction: float | None, has_bg: bool
) -> tuple[list[str], np.ndarray]:
    """Each ion's "on:<style>" / "off:<style>", shuffled, and its label (0 = off)."""
    off_fraction = rng.uniform(0.15, 0.5) if off_fraction is None else off_fraction
    n_off = int(round(n_ions * off_fraction))
    n_off = min(max(n_off, 1), n_ions - 1)
    styles_off = OFF_STYLES if has_bg else OFF_STYLES_NO_BG
    p_off = OFF_P / OFF_P.sum() if has_bg else None
    kinds = [f"on:{rng.choice(ON_STYLES, p=ON_P / ON_P.sum())}" for _ in range(n_ions - n_off)] + [
        f"off:{rng.choice(styles_off, p=p_off)}" for _ in range(n_off)
    ]
    order = rng.permutation(n_ions)
    kinds = [kinds[i] for i in order]
    return kinds, np.array([0 if k.startswith("off") else 1 for k in kinds], np.int64)


@dataclass
class _Scene:
    """One dataset's layout and acquisition traits, shared by its ions."""

    h: int
    w: int
    geo: object  # _geometry(...)
    acq: np.ndarray
    has_bg: bool
    hard: bool
    stripes: np.ndarray | None  # row gains, or None
    noise_level: float
    leak: float  # how much ions leak across the tissue edge


def _pattern(kind: str, sc: _Scene, rng: np.random.Generator) -> np.ndarray:
    """The ion's clean pattern, 0..1, with its leaks and contrast."""
    h, w, soft = sc.h, sc.w, sc.geo.soft
    cls, style = kind.split(":")
    p = _on_pattern(style, h, w, sc.geo, rng) if cls == "on" else _off_pattern(style, h, w, sc.geo, rng)
    p = p / max(float(p.max()), 1e-9)
    # Real ions are rarely clean: some tissue ions leak a little into the background,
    # some matrix ions are also (weaker) on the tissue.
    if cls == "on" and sc.has_bg and rng.random() < (0.5 if sc.hard else 0.3):
        p = p + rng.uniform(0.03, sc.leak) * (1 - soft) * sc.acq * (0.5 + _field(h, w, rng, 6))
    elif cls == "off" and style in ("matrix", "matrix_clusters", "bright_surround") and rng.random() < 0.3:
        p = p + rng.uniform(0.1, 2 * sc.leak) * soft
    if rng.random() < 0.3:  # contrast differs between ions and renderings
        p = np.maximum(p, 0) ** rng.uniform(0.5, 2.0)
    return p


def _ion_image(kind: str, sc: _Scene, rng: np.random.Generator) -> np.ndarray:
    """The ion's counts as an instrument records them (NaN outside the acquisition)."""
    h, w = sc.h, sc.w
    style = kind.split(":")[1]
    p = _pattern(kind, sc, rng)
    scale = 10 ** rng.uniform(1.0, 4.5)  # counts at the brightest pixel
    noise = sc.noise_level * rng.uniform(0.5, 1.5) if style != "weak" else rng.uniform(0.2, 0.5)
    img = p * scale
    if sc.stripes is not None:
        img = img * sc.stripes[:, None] ** rng.uniform(0.5, 1.0)
    img = img + np.sqrt(np.maximum(img, 0)) * rng.standard_normal((h, w))  # shot noise
    img = img + noise * scale * rng.random((h, w)) * (rng.random((h, w)) < 0.5)  # chemical noise
    img = np.where(img < rng.uniform(0.0, 0.1) * scale, 0.0, img)  # detection limit
    if rng.random() < (0.35 if sc.hard else 0.2):  # a baseline: low-contrast images
        img = img + rng.uniform(0.05, 0.5) * scale * (1 + 0.1 * rng.standard_normal((h, w)))
    if rng.random() < 0.3:  # salt: isolated bright pixels anywhere, background included
        salt = rng.random((h, w)) < rng.uniform(0.002, 0.02)
        img = img + salt * scale * rng.uniform(0.3, 1.0, (h, w))
    if rng.random() < 0.4:  # hot pixels
        m = int(rng.integers(1, 5))
        img[rng.integers(0, h, m), rng.integers(0, w, m)] = scale * rng.uniform(3, 30, m)
    return np.where(sc.acq, np.maximum(img, 0), np.nan)


def _tic(imgs: np.ndarray, sc: _Scene, rng: np.random.Generator) -> np.ndarray:
    """Every ion (the tissue has many more than we generated) plus the matrix, whose share
    varies, so on some datasets the background is brighter than the tissue."""
    n_ions, soft = len(imgs), sc.geo.soft
    with np.errstate(invalid="ignore"):
        norm = imgs / np.maximum(np.nanmax(imgs.reshape(n_ions, -1), axis=1), 1e-9)[:, None, None]
    tic = np.nansum(norm, axis=0) + rng.uniform(0, 3) * n_ions / 10 * soft * (
        0.5 + _field(sc.h, sc.w, rng, 6)
    )
    tic = tic + rng.uniform(0, 2) * n_ions / 10 * (1 - soft)
    return np.where(sc.acq, tic * (1 + 0.1 * rng.standard_normal((sc.h, sc.w))), np.nan).astype(np.float32)


def make_dataset(
    rng: np.random.Generator,
    h: int | None = None,
    w: int | None = None,
    n_ions: int = 40,
    off_fraction: float | None = None,
    mode: str | None = None,
    hard: bool = False,
) -> SyntheticDataset:
    """One synthetic dataset. mode: one of MODES ("blobs", "ring", "full", "cover", "side")."""
    h = int(h or rng.integers(40, 251))
    w = int(w or np.clip(h * rng.uniform(0.6, 1.6), 40, 250))
    mode = mode or str(rng.choice(MODES, p=MODE_P))
    t = _tissue(h, w, rng, mode)
    if t.sum() < 10:
        t[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = True
    acq = _acquired(h, w, rng, t) if mode not in ("full", "cover", "side") else np.ones((h, w), bool)
    has_bg = bool((acq & ~t).sum() > 0.05 * acq.sum())
    geo = _geometry(t, acq, rng)
    kinds, labels = _ion_kinds(rng, n_ions, off_fraction, has_bg)
    # Dataset-wide acquisition traits: stripes, noise level, how much ions leak.
    stripes = _row_gain(h, rng) if rng.random() < (0.4 if hard else 0.15) else None
    noise_level = rng.uniform(0.0, 0.3) * (2 if hard else 1)
    sc = _Scene(h, w, geo, acq, has_bg, hard, stripes, noise_level, leak=0.35 if hard else 0.2)
    imgs = np.empty((n_ions, h, w), np.float32)
    for i, kind in enumerate(kinds):
        imgs[i] = _ion_image(kind, sc, rng)
    return SyntheticDataset(imgs, labels, kinds, _tic(imgs, sc, rng), t, acq, has_bg)


def make_data(
    n_datasets: int = 10,
    ions: int | tuple[int, int] = 40,
    seed: int = 0,
    size: tuple[int, int] = (30, 150),
    modes: list[str] | None = None,
    jitter: bool = True,
    hard: bool = False,
) -> SyntheticData:
    """Several datasets flattened into image lists (groups "s0", "s1", ...). jitter crops a
    few images by 1-3 px, as happens within a real dataset. Aspect ratios 0.5-2."""
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    labels, groups = [], []
    tics, datasets = {}, {}
    for d in range(n_datasets):
        n = int(rng.integers(ions[0], ions[1] + 1)) if isinstance(ions, tuple) else int(ions)
        mode = modes[d % len(modes)] if modes else None
        h = int(rng.integers(size[0], size[1] + 1))
        w = int(np.clip(h * np.exp(rng.uniform(np.log(0.5), np.log(2.0))), size[0], size[1]))
        ds = make_dataset(rng, h, w, n, mode=mode, hard=hard)
        g = f"s{d}"
        for i in range(n):
            a = ds.images[i]
            if jitter and rng.random() < 0.1:
                a = a[: h - int(rng.integers(1, 4)), : w - int(rng.integers(1, 4))]
            images.append(a)
        labels += list(ds.labels)
        groups += [g] * n
        tics[g] = ds.tic
        datasets[g] = ds
    return SyntheticData(images, np.asarray(labels, np.int64), np.asarray(groups), tics, datasets)
