"""The default score: what a project shows before anyone has labelled anything, the shipped
model (`bundle.default_score_model`) blended with a context score: where is the sample, and
which ions sit off it.

estimate_sample_mask clusters pixel spectra (k-means, 2 clusters, on log-scaled per-pixel ion
vectors reduced by PCA, plus the log TIC; a small numpy k-means, so that scoring a new dataset
does not import scikit-learn and SciPy, ~2 s of a 4-5 s `import_imzml`) and calls "sample" the cluster that is richer in
ions and further from the acquisition edge: background holds matrix ions only, tissue holds
most ions, and slides are framed around the tissue. An ion is then off-sample to the degree
its intensity sits outside that area (mean off vs on, and anti-correlation with the mask).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ionsieve_core.imaging.slabs import release_pages, slab_size
from ionsieve_core.ml.active import predict_and_embed
from ionsieve_core.ml.bundle import default_score_model
from ionsieve_core.ml.preprocess import clip_scale

log = logging.getLogger(__name__)

MAX_FEATURE_IONS = 150
MAX_FIT_PIXELS = 4000
FULL_COVERAGE = 0.95  # a mask covering more of the acquired pixels means "no background"
PRESENT = 0.1  # an ion is "present" at a pixel above this fraction of its 99th percentile
# Larger grids are block-averaged to about this many px per side before clustering and
# scoring: a sample mask does not need 200x200 px, and it makes 500 ions x 200x200 ~4x cheaper.
MASK_GRID = 100
KMEANS_MAX_ITER = 300


def gaussian(a: np.ndarray, sigma: float = 1.0, truncate: float = 4.0) -> np.ndarray:
    """skimage.filters.gaussian's default (edge pixels repeated, kernel cut at 4 sigma), in numpy:
    separable, one weighted sum of shifted copies per axis."""
    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    wts = np.exp(-0.5 * (x / sigma) ** 2)
    wts /= wts.sum()
    out = np.asarray(a, dtype=np.float32)
    for axis in (0, 1):
        n = out.shape[axis]
        p = np.pad(out, [(r, r) if i == axis else (0, 0) for i in range(2)], mode="edge").astype(np.float64)
        acc = sum(wt * np.take(p, np.arange(i, i + n), axis=axis) for i, wt in enumerate(wts))
        out = acc.astype(np.float32)
    return out


def kmeans2(x: np.ndarray, seed: int = 0, n_init: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Two-cluster k-means of the rows of `x`: Lloyd's iterations from several starts, the one
    with the least inertia kept (as scikit-learn's KMeans does): the split of the first coordinate
    at its mean (x is PCA-projected: the widest spread), then `n_init` greedy k-means++ starts
    seeded by `seed`. Deterministic. Returns ((2, d) centres, labels)."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    split = x[:, 0] > x[:, 0].mean()
    starts = [np.stack([x[~split].mean(axis=0), x[split].mean(axis=0)])] if 0 < split.sum() < len(x) else []
    starts += [_plus_plus(x, rng) for _ in range(n_init)]
    best = None
    for centres in starts:
        centres, lab = _lloyd(x, centres)
        inertia = float(np.minimum(_sq_dist(x, centres[0]), _sq_dist(x, centres[1])).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centres, lab)
    return best[1], best[2]


def _plus_plus(x: np.ndarray, rng: np.random.Generator, trials: int = 2) -> np.ndarray:
    """Greedy k-means++ for two centres (scikit-learn's seeding): a random row, then of `trials`
    rows drawn by squared distance to it, the one leaving the least inertia."""
    first = x[rng.integers(len(x))]
    d = _sq_dist(x, first)
    if d.sum() <= 0:
        return np.stack([first, first])
    picks = rng.choice(len(x), size=trials, p=d / d.sum())
    cost = [float(np.minimum(d, _sq_dist(x, x[i])).sum()) for i in picks]
    return np.stack([first, x[picks[int(np.argmin(cost))]]])


def _lloyd(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centres = centres.copy()
    lab = nearest(x, centres)
    for _ in range(KMEANS_MAX_ITER):
        for c in (0, 1):
            members = x[lab == c]
            # An emptied cluster restarts at the row furthest from the other centre.
            centres[c] = members.mean(axis=0) if len(members) else x[np.argmax(_sq_dist(x, centres[1 - c]))]
        new = nearest(x, centres)
        if np.array_equal(new, lab):
            break
        lab = new
    return centres, lab


def _sq_dist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    d = x - c
    return np.einsum("ij,ij->i", d, d)


def nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearer of two centres for each row of x."""
    x = np.asarray(x, dtype=np.float64)
    return (_sq_dist(x, centres[1]) < _sq_dist(x, centres[0])).astype(np.intp)


def _acquired(images: np.ndarray, tic: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    k = images.shape[0]
    step = max(1, k // 64)
    acq = np.isfinite(images[::step]).any(axis=0)
    if tic is None or np.shape(tic) != images.shape[1:]:
        tic = np.nansum(images[::step], axis=0)
    tic = np.asarray(tic, dtype=np.float32)
    acq &= np.isfinite(tic)
    return acq, np.where(acq, tic, 0).astype(np.float32)


def _normalised(images: np.ndarray, acq: np.ndarray) -> np.ndarray:
    """(k, m) intensities at the m acquired pixels, hotspot-clipped and scaled to 0..1."""
    x = np.asarray(images, dtype=np.float32)[:, acq]  # (k, m)
    return clip_scale(x[:, :, None, None])[:, :, 0, 0]


def _mask_from_x(
    x: np.ndarray, acq: np.ndarray, tic: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, bool, dict]:
    h, w = acq.shape
    k, m = x.shape
    info: dict = {}
    if m < 20 or k == 0:
        return acq.copy(), False, info
    rng = np.random.default_rng(seed)
    ions = np.linspace(0, k - 1, min(k, MAX_FEATURE_IONS)).astype(int)
    feats = np.log1p(20 * x[ions].T)  # (m, k') log-scaled per-pixel ion vectors
    lt = np.log1p(tic[acq] / max(float(np.percentile(tic[acq], 99)), 1e-9) * 20)
    feats = np.concatenate([feats, (lt / max(lt.std(), 1e-9) * feats.std(axis=0).mean())[:, None]], axis=1)
    fit = rng.choice(m, size=min(m, MAX_FIT_PIXELS), replace=False)
    mu = feats[fit].mean(axis=0)
    # PCA through the small (k' x k') covariance: same axes as an SVD of the pixel matrix,
    # a fraction of the cost.
    fc = feats[fit] - mu
    _, vecs = np.linalg.eigh(fc.T @ fc)
    proj = (feats - mu) @ vecs[:, ::-1][:, : min(8, vecs.shape[1])]
    centres, _ = kmeans2(proj[fit], seed)
    lab = nearest(proj, centres)
    grid = np.zeros((h, w), np.float32)
    grid[acq] = lab
    # Majority smoothing: speckle pixels join their neighbours' cluster.
    smooth = gaussian(grid, 1.0) / np.maximum(gaussian(acq.astype(np.float32), 1.0), 1e-6)
    c1 = (smooth > 0.5) & acq
    richness = (x > PRESENT).mean(axis=0)  # per pixel: share of ions present
    edge = acq & ~_erode(acq)
    depth = _depth(acq)
    stats = []
    for c in (~c1 & acq, c1):
        sel = c[acq]
        if sel.sum() == 0:
            stats.append((0.0, 0.0, 0.0))
            continue
        stats.append(
            (
                float(richness[sel].mean()),
                float(depth[c].mean()),
                float((c & edge).sum() / max(edge.sum(), 1)),
            )
        )
    # Sample = richer in ions and deeper inside the acquisition (log ratios, both votes).
    eps = 1e-6
    vote = np.log((stats[1][0] + eps) / (stats[0][0] + eps)) + np.log(
        (stats[1][1] + eps) / (stats[0][1] + eps)
    )
    mask = c1 if vote > 0 else (~c1 & acq)
    sample_i = 1 if vote > 0 else 0
    bg = acq & ~mask
    coverage = float(mask.sum() / max(acq.sum(), 1))
    rich_ratio = (stats[1 - sample_i][0] + eps) / (stats[sample_i][0] + eps)
    # Fraction of ions clearly absent from the candidate background: high for real
    # background (tissue ions missing), low when k-means merely split tissue regions.
    on_mean = x[:, mask[acq]].mean(axis=1) if mask.any() else np.zeros(k)
    off_mean = x[:, bg[acq]].mean(axis=1) if bg.any() else np.zeros(k)
    absent = float(np.mean(off_mean < 0.25 * on_mean)) if bg.any() else 0.0
    info = {
        "coverage": coverage,
        "richness_ratio": float(rich_ratio),
        "absent_share": absent,
        "edge_share_bg": stats[1 - sample_i][2],
    }
    # On generated data: real backgrounds lack 40-80 % of the ions, tissue-vs-tissue splits
    # lack 0-2 %; richness ratios overlap more (0.3-0.85 vs ~1.0), hence the loose bound.
    has_bg = coverage <= FULL_COVERAGE and absent >= 0.2 and rich_ratio < 0.95
    return mask, bool(has_bg), info


def _erode(a: np.ndarray) -> np.ndarray:
    """One 4-neighbour binary erosion; pixels outside the grid count as not acquired."""
    p = np.pad(a, 1)
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def _depth(acq: np.ndarray) -> np.ndarray:
    """Distance (in px, city-block) of each pixel from the acquisition's edge."""
    d = np.zeros(acq.shape, np.float32)
    cur = acq.copy()
    for i in range(1, 1 + max(acq.shape) // 2):
        cur = _erode(cur)
        if not cur.any():
            break
        d[cur] = i
    return d


def estimate_sample_mask(images: np.ndarray, tic: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """(sample mask bool (h, w), has_background). Unsupervised, per dataset."""
    _, has_bg, mask = context_scores(images, tic)
    return mask, has_bg


def _scores_from_x(x: np.ndarray, acq: np.ndarray, mask: np.ndarray, has_bg: bool) -> np.ndarray:
    k = x.shape[0]
    if k == 0:
        return np.zeros(0)
    if not has_bg:
        # No background to compare with: a weak tie-breaker only (intensity piled at the
        # acquisition's edge is an artefact sign), kept near 0.5 on purpose.
        depth = _depth(acq)[acq]
        rim = depth <= max(1.0, float(np.percentile(depth, 10)))
        tot = x.sum(axis=1) + 1e-9
        share = x[:, rim].sum(axis=1) / tot / max(rim.mean(), 1e-9)
        return np.clip(0.5 + 0.1 * np.tanh(np.log(np.maximum(share, 1e-3))), 0.0, 1.0)
    m = mask[acq].astype(np.float32)
    n_on = max(float(m.sum()), 1.0)
    n_off = max(float(len(m) - m.sum()), 1.0)
    # Everything from matrix-vector products: no (k, m) temporaries.
    s_on = x @ m
    s_all = x.sum(axis=1, dtype=np.float64)
    on = s_on / n_on
    off = (s_all - s_on) / n_off
    s1 = off / (on + off + 1e-9)
    # Pearson correlation with the mask: x @ (m - mean m) needs no centred copy of x.
    mc = m - m.mean()
    mean = s_all / len(m)
    ss = np.einsum("ij,ij->i", x, x, dtype=np.float64) - len(m) * mean * mean
    corr = (x @ mc) / (np.sqrt(np.maximum(ss, 0) * float(mc @ mc)) + 1e-9)
    s2 = (1 - corr) / 2
    return np.clip(0.5 * (s1 + s2), 0.0, 1.0)


def _block_sum(a: np.ndarray, f: int) -> np.ndarray:
    # f strided slices added per axis: much faster than a sum over a reshaped f-axis.
    a = sum(a[..., i::f, :] for i in range(f))
    return sum(a[..., i::f] for i in range(f))


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Block means over f x f px of (..., hp, wp) float32 (NaN = not acquired is kept where a
    whole block is NaN); `a` is zeroed where not finite (the caller's scratch copy)."""
    ok = np.isfinite(a)
    if ok.all():
        return _block_sum(a, f) / np.float32(f * f)
    n = _block_sum(ok.astype(np.float32), f)
    np.copyto(a, np.float32(0), where=~ok)
    total = _block_sum(a, f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan).astype(np.float32)


def _pool(images: np.ndarray, tic: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Block means over f x f px (NaN = not acquired is kept where a whole block is NaN).

    The stack (maybe a memory map) is read in slabs (`slab_size`) copied into one NaN-padded
    scratch buffer: no float32, padded or mask copy of the whole stack exists at any time (at
    100,000 px x 500 ions they made ~600 MB), and each image gives the numbers it gives alone."""
    k, h, w = images.shape
    f = int(np.ceil(max(h, w) / MASK_GRID))
    if f <= 1:
        return images, tic, 1
    hp, wp = -(-h // f) * f, -(-w // f) * f
    out = np.empty((k, hp // f, wp // f), np.float32)
    step = slab_size((k, hp, wp))
    buf = np.empty((min(step, k), hp, wp), np.float32)
    for s in range(0, k, step):
        b = buf[: min(step, k - s)]
        b[:, :h, :w] = images[s : s + len(b)]
        b[:, h:, :] = np.nan  # the padding (zeroed by the slab before)
        b[:, :h, w:] = np.nan
        out[s : s + len(b)] = _block_mean(b, f)
        release_pages(images[s : s + len(b)])
    tic_p = None
    if tic is not None and np.shape(tic) == (h, w):
        t = np.full((hp, wp), np.nan, np.float32)
        t[:h, :w] = tic
        tic_p = _block_mean(t, f)
    return out, tic_p, f


def context_scores(images: np.ndarray, tic: np.ndarray | None) -> tuple[np.ndarray, bool, np.ndarray]:
    """(off-sample score per ion, has_background, sample mask at the images' resolution)."""
    from threadpoolctl import threadpool_limits

    images = np.asarray(images)
    h, w = images.shape[1:]
    small, tic_s, f = _pool(images, tic)
    acq, tic_s = _acquired(small, tic_s)
    x = _normalised(small, acq)
    # One BLAS thread, as the model's plan runs: the products here are small, and two threads
    # on a shared 2-core machine spent 2-5x longer waiting for each other (0.06 vs 0.15-0.3 s).
    with threadpool_limits(limits=1, user_api="blas"):
        mask, has_bg, _ = _mask_from_x(x, acq, tic_s)
        scores = _scores_from_x(x, acq, mask, has_bg)
    if f > 1:
        full_acq, _ = _acquired(images, None)
        mask = np.repeat(np.repeat(mask, f, axis=0), f, axis=1)[:h, :w] & full_acq
    return scores, has_bg, mask


def default_context_scores(images: np.ndarray, tic: np.ndarray | None) -> np.ndarray:
    """(k,) in 0..1, higher = more off-sample: the default score's context half alone."""
    return context_scores(images, tic)[0]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def blend(p_model: np.ndarray, p_ctx: np.ndarray, how: dict | None) -> np.ndarray:
    """Combine the pretrained model's p(off) with the context score."""
    how = how or {"method": "rank"}
    if how.get("method") == "logistic":
        z = how["a"] * _logit(p_model) + how["b"] * _logit(p_ctx) + how["c"]
        return 1 / (1 + np.exp(-z))
    # Rank average within the dataset, mapped back onto the model's probability scale so
    # the 0.5 threshold keeps roughly its meaning.
    n = len(p_model)
    r = (np.argsort(np.argsort(p_model)) + np.argsort(np.argsort(p_ctx))) / (2.0 * max(n - 1, 1))
    return np.quantile(p_model, np.clip(r, 0, 1)) if n > 1 else p_model


def _model_beside_context(model, stack: np.ndarray, tic: np.ndarray | None):
    """(model(), context_scores(stack, tic)), the context half in a second thread: the two
    halves share nothing but the (read-only) stack, and numpy releases the GIL in their heavy
    steps, so on two cores the context's ~0.5 s of 100,000 px x 500 ions is hidden behind the
    model's inputs and network. BLAS stays at one thread for both (threadpoolctl's limit is
    process-wide: it is set here, around both, so that neither half restores it under the other)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="context-score") as pool,
    ):
        context = pool.submit(context_scores, stack, tic)
        return model(), context.result()


def default_binary_scores(
    images: np.ndarray | list[np.ndarray],
    tic: np.ndarray | None,
    model_path: str | os.PathLike | None = None,
    shared_context: bool = True,
    with_embeddings: bool = False,
):
    """(k, 2) [p_off, p_on] for a project nobody has trained a model for yet.

    `images` is a (k, h, w) stack of one acquisition (an MSI dataset: the context half looks
    for the sample area they share), or a list of arrays each cropped to its own size. With
    `shared_context` False, or images of different sizes, the images are unrelated pictures
    (an image collection from several acquisitions): there is no common sample area to find,
    so each image is scored on its own by the pretrained model.
    With `with_embeddings`, returns (scores, (k, d) embeddings of the pretrained model or None),
    from the same pass of the network (ionsieve_core.ml.active learns from them).
    """
    emb = None

    def model_p(arrays: list[np.ndarray]) -> np.ndarray:
        nonlocal emb
        if not with_embeddings:
            from ionsieve_core.ml.training import predict

            return predict(bundle, arrays)[:, 0]
        probs, emb = predict_and_embed(bundle, arrays)
        return probs[:, 0]

    k = len(images)
    if k == 0:
        return (np.zeros((0, 2)), None) if with_embeddings else np.zeros((0, 2))
    shapes = {np.shape(a)[:2] for a in images}
    shared = shared_context and len(shapes) == 1
    bundle = default_score_model(model_path)  # the numpy plan unless TensorFlow is warm already
    if not shared:
        arrays = [np.asarray(a, dtype=np.float32) for a in images]
        p = model_p(arrays) if bundle is not None else np.full(k, 0.5)
    else:
        stack = np.asarray(images, dtype=np.float32)
        if bundle is None:
            p = context_scores(stack, tic)[0]
        else:
            pm, (ctx, has_bg, _) = _model_beside_context(lambda: model_p(list(stack)), stack, tic)
            p = blend(pm, ctx, bundle.extra.get("blend")) if has_bg else pm
    p = np.clip(p, 0.0, 1.0)
    out = np.stack([p, 1 - p], axis=1)
    return (out, emb) if with_embeddings else out
