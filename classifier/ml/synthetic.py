"""Labelled synthetic ion images with known truth, one synthetic "dataset" at a time.

A dataset is a tissue section on a slide: a tissue mask (blobs / ellipses with noisy borders;
sometimes filling nearly the whole grid with a thin background ring, sometimes the whole
grid), on-sample ions (structure inside the tissue: gradients, sub-regions, hotspots, sparse
speckles, weak noisy ones) and off-sample ions (matrix background, halos, delocalised
analytes, gradients across the slide, uniform with ion suppression on the tissue), detection
limits, shot noise and hot pixels, sometimes a non-rectangular acquisition (NaN outside).
Class 0 = "off", class 1 = "on", as galleries sort by the first class.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.filters import gaussian
from skimage.transform import resize

CLASSES = ["off", "on"]
ON_STYLES = ("gradient", "subregion", "hotspots", "speckles", "weak", "texture", "uniform", "rim_inner")
OFF_STYLES = ("matrix", "halo", "delocalised", "slide_gradient", "suppressed", "matrix_clusters")
# Datasets without any background still have off-sample ions: instrument/slide artefacts.
OFF_STYLES_NO_BG = ("slide_gradient", "noise_only", "edge_stripe")


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
        return [self.tics[g][: a.shape[0], : a.shape[1]] for a, g in zip(self.images, self.groups, strict=True)]


def _field(h: int, w: int, rng: np.random.Generator, cells: int) -> np.ndarray:
    """A smooth random field in 0..1."""
    f = resize(rng.random((cells, cells)), (h, w), order=3, mode="reflect", anti_aliasing=False)
    f -= f.min()
    return f / max(f.max(), 1e-9)


def _tissue(h: int, w: int, rng: np.random.Generator, mode: str) -> np.ndarray:
    if mode == "full":
        return np.ones((h, w), bool)
    if mode == "ring":  # tissue nearly fills the grid: a thin background ring at the border
        r = rng.uniform(1, max(2, min(h, w) / 12))
        yy, xx = np.mgrid[0:h, 0:w]
        d = np.minimum(np.minimum(yy, h - 1 - yy), np.minimum(xx, w - 1 - xx))
        return d >= r + 2.5 * _field(h, w, rng, 10)  # a noisy inner border
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    score = np.full((h, w), np.inf)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = h * rng.uniform(0.3, 0.7), w * rng.uniform(0.3, 0.7)
        ry, rx = h * rng.uniform(0.15, 0.4), w * rng.uniform(0.15, 0.4)
        a = rng.uniform(0, np.pi)
        dy, dx = (yy - cy) / ry, (xx - cx) / rx
        r2 = (dy * np.cos(a) + dx * np.sin(a)) ** 2 + (dx * np.cos(a) - dy * np.sin(a)) ** 2
        score = np.minimum(score, r2)
    score = score + rng.uniform(0.2, 0.8) * _field(h, w, rng, int(rng.integers(4, 10)))
    t = score <= np.quantile(score, rng.uniform(0.25, 0.7))
    return t


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


def _on_pattern(style: str, h: int, w: int, t: np.ndarray, soft: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    if style == "gradient":
        a = rng.uniform(0, 2 * np.pi)
        g = np.cos(a) * xx + np.sin(a) * yy
        return (g - g.min() + 0.15) * soft
    if style == "subregion":
        return (0.1 + (_field(h, w, rng, int(rng.integers(4, 9))) > rng.uniform(0.4, 0.7))) * soft
    if style == "hotspots":
        img = 0.2 * soft
        ty, tx = np.nonzero(t)
        for _ in range(int(rng.integers(2, 8))):
            j = int(rng.integers(0, ty.size))
            s = rng.uniform(0.01, 0.05)
            img = img + np.exp(-((yy - ty[j] / max(h, w)) ** 2 + (xx - tx[j] / max(h, w)) ** 2) / (2 * s * s)) * t
        return img
    if style == "speckles":
        return (rng.random((h, w)) < rng.uniform(0.05, 0.3)) * soft * rng.uniform(0.5, 1, (h, w))
    if style == "weak":
        return soft * rng.uniform(0.2, 0.6)
    if style == "texture":
        return (0.2 + _field(h, w, rng, int(rng.integers(8, 16)))) * soft
    if style == "rim_inner":  # enriched at the tissue edge, still inside the tissue
        inner = gaussian(t.astype(float), rng.uniform(1.5, 4))
        return (0.3 + (1 - inner) * 2) * soft * t
    return soft * (0.8 + 0.2 * _field(h, w, rng, 4))


def _off_pattern(style: str, h: int, w: int, t: np.ndarray, soft: np.ndarray, acq: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    bg = (1 - soft) * acq
    if style == "matrix":
        return bg * (0.6 + 0.4 * _field(h, w, rng, int(rng.integers(3, 8))))
    if style == "matrix_clusters":
        return bg * (rng.random((h, w)) < rng.uniform(0.2, 0.7)) * rng.uniform(0.3, 1, (h, w))
    if style == "halo":
        sigma = rng.uniform(1.5, max(2.0, min(h, w) / 10))
        ring = gaussian(t.astype(float), sigma) * (1 - t)
        return ring / max(ring.max(), 1e-9) + 0.05 * bg
    if style == "delocalised":  # an analyte that spread off the tissue, strongest outside
        spread = gaussian(t.astype(float), rng.uniform(3, max(4.0, min(h, w) / 5)))
        return spread * (1 - 0.7 * t) + 0.2 * bg
    if style == "slide_gradient":
        a = rng.uniform(0, 2 * np.pi)
        g = np.cos(a) * xx + np.sin(a) * yy
        g = (g - g.min()) / max(np.ptp(g), 1e-9)
        return (0.1 + g) * (1 - rng.uniform(0.2, 0.7) * soft)
    if style == "suppressed":
        return np.ones((h, w)) * (1 - rng.uniform(0.6, 0.95) * soft)
    if style == "noise_only":
        return rng.random((h, w)) * 0.3
    # edge_stripe: an artefact along one side of the acquisition
    side = int(rng.integers(0, 4))
    d = [yy, 1 - yy, xx, 1 - xx][side]
    return np.exp(-d / rng.uniform(0.03, 0.1))


def make_dataset(rng: np.random.Generator, h: int | None = None, w: int | None = None, n_ions: int = 40,
                 off_fraction: float | None = None, mode: str | None = None) -> SyntheticDataset:
    """One synthetic dataset. mode: "blobs" (default mix), "ring" (thin background), "full"."""
    h = int(h or rng.integers(30, 151))
    w = int(w or np.clip(h * rng.uniform(0.6, 1.6), 30, 150))
    mode = mode or str(rng.choice(["blobs", "ring", "full"], p=[0.75, 0.15, 0.1]))
    t = _tissue(h, w, rng, mode)
    if t.sum() < 10:
        t[h // 3: 2 * h // 3, w // 3: 2 * w // 3] = True
    acq = _acquired(h, w, rng, t) if mode != "full" else np.ones((h, w), bool)
    has_bg = bool((acq & ~t).sum() > 0.05 * acq.sum())
    soft = gaussian(t.astype(float), rng.uniform(0.5, 1.5))
    off_fraction = rng.uniform(0.15, 0.5) if off_fraction is None else off_fraction
    n_off = int(round(n_ions * off_fraction))
    n_off = min(max(n_off, 1), n_ions - 1)
    styles_off = OFF_STYLES if has_bg else OFF_STYLES_NO_BG
    kinds = ([f"on:{rng.choice(ON_STYLES)}" for _ in range(n_ions - n_off)]
             + [f"off:{rng.choice(styles_off)}" for _ in range(n_off)])
    order = rng.permutation(n_ions)
    kinds = [kinds[i] for i in order]
    labels = np.array([0 if k.startswith("off") else 1 for k in kinds], np.int64)
    imgs = np.empty((n_ions, h, w), np.float32)
    for i, kind in enumerate(kinds):
        cls, style = kind.split(":")
        if cls == "on":
            p = _on_pattern(style, h, w, t, soft, rng)
        else:
            p = _off_pattern(style, h, w, t, soft, acq, rng)
        p = p / max(float(p.max()), 1e-9)
        # Real ions are rarely clean: some tissue ions leak a little into the background,
        # some matrix ions are also (weaker) on the tissue.
        if cls == "on" and has_bg and rng.random() < 0.3:
            p = p + rng.uniform(0.03, 0.2) * (1 - soft) * acq
        elif cls == "off" and style in ("matrix", "matrix_clusters") and rng.random() < 0.3:
            p = p + rng.uniform(0.1, 0.4) * soft
        scale = 10 ** rng.uniform(1.5, 4.5)  # counts at the brightest pixel
        noise = rng.uniform(0.0, 0.25) if style != "weak" else rng.uniform(0.2, 0.5)
        img = p * scale
        img = img + np.sqrt(np.maximum(img, 0)) * rng.standard_normal((h, w))  # shot noise
        img = img + noise * scale * rng.random((h, w)) * (rng.random((h, w)) < 0.5)  # chemical noise
        img = np.where(img < rng.uniform(0.0, 0.1) * scale, 0.0, img)  # detection limit
        if rng.random() < 0.4:  # hot pixels
            m = int(rng.integers(1, 5))
            img[rng.integers(0, h, m), rng.integers(0, w, m)] = scale * rng.uniform(3, 30, m)
        imgs[i] = np.where(acq, np.maximum(img, 0), np.nan)
    # TIC: every ion (the tissue has many more than we generated) plus the matrix, whose
    # share varies, so on some datasets the background is brighter than the tissue.
    with np.errstate(invalid="ignore"):
        norm = imgs / np.nanmax(imgs.reshape(n_ions, -1), axis=1)[:, None, None]
    tic = np.nansum(norm, axis=0) + rng.uniform(0, 3) * n_ions / 10 * soft * (0.5 + _field(h, w, rng, 6))
    tic = tic + rng.uniform(0, 2) * n_ions / 10 * (1 - soft)
    tic = np.where(acq, tic * (1 + 0.1 * rng.standard_normal((h, w))), np.nan).astype(np.float32)
    return SyntheticDataset(imgs, labels, kinds, tic, t, acq, has_bg)


def make_data(n_datasets: int = 10, ions: int | tuple[int, int] = 40, seed: int = 0,
              size: tuple[int, int] = (30, 150), modes: list[str] | None = None,
              jitter: bool = True) -> SyntheticData:
    """Several datasets flattened into image lists (groups "s0", "s1", ...). jitter crops a
    few images by 1-3 px, as happens within a real dataset."""
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    labels, groups = [], []
    tics, datasets = {}, {}
    for d in range(n_datasets):
        n = int(rng.integers(ions[0], ions[1] + 1)) if isinstance(ions, tuple) else int(ions)
        mode = modes[d % len(modes)] if modes else None
        h = int(rng.integers(size[0], size[1] + 1))
        w = int(np.clip(h * rng.uniform(0.7, 1.4), size[0], size[1]))
        ds = make_dataset(rng, h, w, n, mode=mode)
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
