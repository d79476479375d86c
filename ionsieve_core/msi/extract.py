"""One-pass extraction of ion images, TIC and mean spectrum from an imzML/ibd pair.

Window convention (as METASPACE / imzy): the image value of ion m at a pixel is the sum of
intensities whose m/z lies in [m(1 - ppm 1e-6), m(1 + ppm 1e-6)], both bounds inclusive.

zlib-compressed arrays are decoded spectrum by spectrum into the same per-chunk arrays, so
the rest of the pass is shared; processed files then need one extra decode of the m/z
arrays up front, to know the m/z range before the pass.

The .ibd is visited once, in chunks of ~500,000 values: each chunk's byte range is read
into one reused buffer (or, for scattered layouts, gathered from a memory map whose pages
are released after each chunk), so peak memory is the output array plus a bounded working
set (~100 MB) whatever the .ibd size. Per chunk the work is a handful of vectorised numpy
passes: a lookup table on fine m/z bins assigns most peaks to their window (an exact binary
search only near window edges) and one bincount sums them per pixel and ion.
"""

from __future__ import annotations

import contextlib
import mmap
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from ionsieve_core.msi.errors import MSIError
from ionsieve_core.msi.reader import ImzMLMeta

# Working-set budget per chunk (values gathered from the .ibd at once).
_CHUNK_VALUES = 500_000
_MAX_MEAN_BINS = 100_000
# A chunk is read with one read() when its byte range is at most this many times the bytes
# it needs; beyond that (scattered layouts) values are gathered from the memory map.
_READ_SPAN_RATIO = 4
# Linear bins over the data's m/z range (lookup table and mean-spectrum accumulator).
_FINE_BINS = 1 << 18
# Compressed processed files: m/z arrays decoded up front to estimate the m/z range, and
# how many peaks beyond that range are kept before they are merged on a fine grid.
_RANGE_SAMPLE = 2048
_OVERFLOW_MAX = 2_000_000


@dataclass
class Extraction:
    """Result of `extract`. Images are NaN where no spectrum was acquired."""

    images: np.ndarray  # float32 (k, h, w), order of the requested m/z values
    tic: np.ndarray  # float32 (h, w)
    mean_spectrum: tuple[np.ndarray, np.ndarray]  # (mz float64, intensity float64)
    acquired_mask: np.ndarray  # bool (h, w)
    mzs: np.ndarray  # float64, the requested m/z values, input order
    warnings: list[str] = field(default_factory=list)


class _Progress:
    """Calls the user callback at most ~100 times."""

    def __init__(self, cb: Callable[[float], None] | None) -> None:
        self.cb = cb
        self.last = -1.0

    def __call__(self, frac: float, force: bool = False) -> None:
        if self.cb is not None and (force or frac - self.last >= 0.01):
            self.last = frac
            self.cb(min(1.0, max(0.0, frac)))


class _Windows:
    """All ±ppm windows turned into sorted segment boundaries.

    A peak falls in segment s = searchsorted(bounds, mz, 'right'); ion i covers segments
    a_i+1 .. b_i. Overlapping windows (ions closer than 2 ppm) simply give a segment several
    ions; `seg_ions` lists them (CSR layout), so sums stay exact without a dense matrix.
    """

    def __init__(self, mzs: np.ndarray, ppm: float) -> None:
        lo = mzs * (1.0 - ppm * 1e-6)
        hi = mzs * (1.0 + ppm * 1e-6)
        hi_excl = np.nextafter(hi, np.inf)  # makes the upper bound inclusive
        self.k = mzs.size
        self.bounds = np.unique(np.concatenate([lo, hi_excl]))
        self.a = np.searchsorted(self.bounds, lo)  # index of lo in bounds
        self.b = np.searchsorted(self.bounds, hi_excl)
        nseg = self.bounds.size + 1
        span = self.b - self.a
        ions = np.repeat(np.arange(self.k), span)
        segs = (
            (
                np.repeat(self.a + 1 - np.concatenate([[0], np.cumsum(span)[:-1]]), span)
                + np.arange(span.sum())
            )
            if self.k
            else np.zeros(0, np.int64)
        )
        order = np.argsort(segs, kind="stable")
        self.seg_ions = ions[order]
        self.seg_count = np.bincount(segs, minlength=nseg)
        self.seg_start = np.concatenate([[0], np.cumsum(self.seg_count)[:-1]])
        self.overlap = bool(self.seg_count.max(initial=0) > 1)
        self.seg_ion = np.zeros(0, np.int64)  # set by _fine_lut when windows do not overlap

    def segments(self, mz: np.ndarray, fine: np.ndarray, lut: np.ndarray) -> np.ndarray:
        """Per peak: its ion (no overlap) or segment (overlap); exact search near bounds."""
        out = lut[fine]
        amb = np.flatnonzero(out == _AMBIGUOUS)
        if amb.size:
            seg = np.searchsorted(self.bounds, mz[amb], side="right")
            out[amb] = seg if self.overlap else self.seg_ion[seg]
        return out

    def ion_sums(self, starts: np.ndarray, seg: np.ndarray, ints: np.ndarray, nc: int) -> np.ndarray:
        """(k, nc) window sums from per-peak spectrum index, segment and intensity."""
        if not self.overlap:
            # `seg` already holds ion indices (see _fine_lut)
            idx = np.flatnonzero(seg >= 0)
            ion = seg[idx]
        else:
            cnt = self.seg_count[seg]
            hit = np.flatnonzero(cnt)
            reps = cnt[hit]
            idx = np.repeat(hit, reps)
            first = np.repeat(np.cumsum(reps) - reps, reps)
            within = np.arange(idx.size) - first
            ion = self.seg_ions[self.seg_start[seg[idx]] + within]
        # ion-major layout so that each output plane is written with one contiguous copy
        # spectrum of each hit, found among the hits only (far fewer than all peaks)
        spec = np.searchsorted(starts, idx, side="right") - 1
        flat = np.bincount(ion * nc + spec, weights=ints[idx], minlength=nc * self.k)
        return flat.reshape(self.k, nc)


_NO_ION, _AMBIGUOUS = -1, -2


def _fine_lut(win: _Windows, lo: float, inv: float, nbins: int) -> np.ndarray:
    """Per fine m/z bin: the segment every peak in it falls in, or _AMBIGUOUS when a window
    bound is at most one bin away (those peaks get an exact binary search)."""
    centres = lo + (np.arange(nbins) + 0.5) / inv
    lut = np.searchsorted(win.bounds, centres, side="right").astype(np.int64)
    bb = ((win.bounds - lo) * inv).astype(np.int64)
    for d in (-1, 0, 1):  # neighbours too: float rounding may shift a peak by one bin
        lut[np.clip(bb + d, 0, nbins - 1)] = _AMBIGUOUS
    lut[0] = lut[-1] = _AMBIGUOUS  # clipped peaks outside the range
    if not win.overlap:
        # one ion per segment at most: map straight to the ion index (or _NO_ION)
        seg_ion = np.full(win.seg_count.size, _NO_ION, dtype=np.int64)
        has = win.seg_count > 0
        seg_ion[has] = win.seg_ions[win.seg_start[has]]
        ok = lut >= 0
        lut[ok] = seg_ion[lut[ok]]
        win.seg_ion = seg_ion
    return lut


class _Cleaner:
    """Counts and zeroes NaN and negative intensities (they would poison sums)."""

    def __init__(self) -> None:
        self.n_nan = 0
        self.n_neg = 0

    def __call__(self, ints: np.ndarray) -> np.ndarray:
        if ints.dtype.kind != "f" and ints.dtype.kind != "i":
            ints = ints.astype(np.float64)
        bad = ~(ints >= 0)  # NaN compares False, so this flags both
        if not bad.any():
            return ints
        vals = ints[bad]
        n_nan = int(np.count_nonzero(np.isnan(vals))) if ints.dtype.kind == "f" else 0
        self.n_nan += n_nan
        self.n_neg += int(vals.size) - n_nan
        out = ints.copy()
        out[bad] = 0
        return out

    def warnings(self) -> list[str]:
        w = []
        if self.n_nan:
            w.append(f"{self.n_nan:,} NaN intensities were set to zero")
        if self.n_neg:
            w.append(f"{self.n_neg:,} negative intensities were set to zero")
        return w


def _alloc_output(shape: tuple[int, int, int]) -> np.ndarray:
    """float32 output array, pre-faulted in one go where the OS allows.

    Faulting ~50,000 fresh pages one at a time during the scattered per-chunk writes cost
    more than the extraction itself on VMs; MAP_POPULATE maps them all in a single call.
    """
    nbytes = int(np.prod(shape)) * 4
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes < (16 << 20) or not populate:
        return np.empty(shape, dtype=np.float32)
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    return np.frombuffer(m, dtype=np.float32).reshape(shape)


def _byte_view(buf: mmap.mmap | bytes, dtype: np.dtype, size: int) -> np.ndarray:
    """A view where element i is the value starting at byte i: gathers by byte offset."""
    n = max(0, size - dtype.itemsize + 1)
    return np.ndarray((n,), dtype=dtype, buffer=buf, offset=0, strides=(1,))


def _open_ibd(meta: ImzMLMeta) -> tuple[BinaryIO, mmap.mmap | bytes]:
    f = open(meta.ibd_path, "rb")  # noqa: SIM115 - closed by the caller
    if meta.ibd_size == 0:
        return f, b""
    return f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def extract(
    meta: ImzMLMeta,
    mzs: np.ndarray,
    ppm: float = 3.0,
    tic_normalise: bool = False,
    progress: Callable[[float], None] | None = None,
    out: np.ndarray | None = None,
) -> Extraction:
    """Ion images for `mzs` (any order; output keeps it), TIC and mean spectrum, one pass.

    `out` may be a preallocated float32 (k, h, w) array (e.g. a np.memmap of the final .npy)
    so that images are written in place rather than held twice.
    """
    targets = np.asarray(mzs, dtype=np.float64).ravel()
    if targets.size and (not np.all(np.isfinite(targets)) or targets.min() <= 0):
        raise MSIError("the m/z values must be positive numbers")
    h, w = meta.shape
    k = targets.size
    if out is None:
        images = _alloc_output((k, h, w))
    else:
        if out.shape != (k, h, w):
            raise ValueError(f"out has shape {out.shape}, expected {(k, h, w)}")
        images = out
    tic = np.full((h, w), np.nan, dtype=np.float32)
    acquired = np.zeros((h, w), dtype=bool)
    acquired[meta.ys, meta.xs] = True
    if not acquired.all():
        # every acquired pixel is written below; prefill only where nothing will land
        # (saves a full pass over a possibly multi-GB output on rectangular grids)
        images[:, ~acquired] = np.nan
    win = _Windows(targets, ppm)
    clean = _Cleaner()
    prog = _Progress(progress)
    prog(0.0, force=True)

    f, buf = _open_ibd(meta)
    try:
        same_len = meta.n_spectra > 0 and np.all(meta.int_lengths == meta.int_lengths[0])
        if meta.shared_mz and same_len:
            mean = _run_continuous(meta, buf, win, clean, images, tic, tic_normalise, prog)
        else:
            mean = _run_processed(meta, f, buf, win, clean, images, tic, tic_normalise, prog, ppm)
    finally:
        if isinstance(buf, mmap.mmap):
            # a traceback may still hold a view; the GC then unmaps it later
            with contextlib.suppress(BufferError):
                buf.close()
        f.close()
    prog(1.0, force=True)
    warns = clean.warnings()
    if tic_normalise and np.any(tic[acquired] == 0):
        warns.append(
            f"{int(np.count_nonzero(tic[acquired] == 0)):,} pixels have zero TIC and were left unnormalised"
        )
    return Extraction(
        images=images, tic=tic, mean_spectrum=mean, acquired_mask=acquired, mzs=targets, warnings=warns
    )


def _store(
    images: np.ndarray,
    tic: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    vals: np.ndarray,
    tics: np.ndarray,
    tic_normalise: bool,
) -> None:
    """Write one chunk; `vals` is (k, n_chunk)."""
    if tic_normalise:
        safe = np.where(tics > 0, tics, 1.0)
        vals = vals / safe[None, :]
    h, w = tic.shape
    flat = ys.astype(np.int64) * w + xs
    if flat.size and flat[-1] - flat[0] == flat.size - 1 and np.all(np.diff(flat) == 1):
        # row-major run of pixels (the usual acquisition order): contiguous slices per plane
        f0, f1 = int(flat[0]), int(flat[-1]) + 1
        tic.reshape(-1)[f0:f1] = tics
        if images.shape[0]:
            images.reshape(images.shape[0], h * w)[:, f0:f1] = vals
        return
    tic[ys, xs] = tics
    if images.shape[0]:
        images[:, ys, xs] = vals


def _run_continuous(
    meta: ImzMLMeta,
    buf: mmap.mmap | bytes,
    win: _Windows,
    clean: _Cleaner,
    images: np.ndarray,
    tic: np.ndarray,
    tic_normalise: bool,
    prog: _Progress,
) -> tuple[np.ndarray, np.ndarray]:
    n = meta.n_spectra
    npts = int(meta.mz_lengths[0])
    if meta.mz_compression:
        mz_axis = _decode_run(
            buf,
            meta.mz_offsets[:1],
            meta.mz_encoded_lengths[:1],
            meta.mz_lengths[:1],
            meta.mz_dtype,
            0,
            "m/z values",
        )
    else:
        mz_axis = np.frombuffer(buf, dtype=meta.mz_dtype, count=npts, offset=int(meta.mz_offsets[0]))
    mz_axis = mz_axis.astype(np.float64)
    _check_mz(mz_axis, np.zeros(npts, np.int64))
    # An unsorted shared axis is read through a sorting permutation of its columns.
    order = np.argsort(mz_axis, kind="stable") if np.any(np.diff(mz_axis) < 0) else None
    if order is not None:
        mz_axis = mz_axis[order]
    # Spectra share the axis, so windows are fixed column ranges: gather only those columns.
    seg = np.searchsorted(win.bounds, mz_axis, side="right")
    lo_col = np.searchsorted(seg, win.a + 1, side="left")
    hi_col = np.searchsorted(seg, win.b + 1, side="left")
    lens = hi_col - lo_col
    cols = (
        (np.repeat(lo_col - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum()))
        if lens.size
        else np.zeros(0, np.intp)
    )
    ends = np.cumsum(lens)
    starts = ends - lens
    mean_acc = np.zeros(npts, dtype=np.float64)
    dt = meta.int_dtype
    rows_per_chunk = max(1, _CHUNK_VALUES // max(npts, 1))
    offs = meta.int_offsets
    for s0 in range(0, n, rows_per_chunk):
        s1 = min(n, s0 + rows_per_chunk)
        o = offs[s0:s1]
        step = np.diff(o)
        if meta.int_compression:
            enc = meta.int_encoded_lengths[s0:s1]
            block = _decode_run(buf, o, enc, meta.int_lengths[s0:s1], dt, s0, "intensities").reshape(
                s1 - s0, npts
            )
            o_end = o + np.where(enc >= 0, enc, 0)
        elif s1 - s0 == 1 or (np.all(step == step[0]) and step[0] >= npts * dt.itemsize):
            stride = int(step[0]) if s1 - s0 > 1 else npts * dt.itemsize
            block = np.ndarray(
                (s1 - s0, npts), dtype=dt, buffer=buf, offset=int(o[0]), strides=(stride, dt.itemsize)
            )
        else:
            block = np.empty((s1 - s0, npts), dtype=dt)
            for r, off in enumerate(o):
                block[r] = np.frombuffer(buf, dtype=dt, count=npts, offset=int(off))
        if not meta.int_compression:
            o_end = o + npts * dt.itemsize
        block = clean(np.array(block))  # copy out of the map: one sequential read
        if order is not None:
            block = block[:, order]
        tics = block.sum(axis=1, dtype=np.float64)
        mean_acc += block.sum(axis=0, dtype=np.float64)
        sub = block[:, cols].astype(np.float64)
        cs = np.zeros((s1 - s0, sub.shape[1] + 1))
        np.cumsum(sub, axis=1, out=cs[:, 1:])
        vals = (cs[:, ends] - cs[:, starts]).T
        _store(images, tic, meta.ys[s0:s1], meta.xs[s0:s1], vals, tics, tic_normalise)
        del block
        _release(buf, (o,), (o_end,))
        prog(s1 / n)
    return mz_axis, mean_acc / max(n, 1)


def _spectrum_sums(ints: np.ndarray, starts: np.ndarray, ln: np.ndarray) -> np.ndarray:
    """Sum of each spectrum's intensities (TIC); reduceat needs care with empty spectra."""
    out = np.zeros(ln.size, dtype=np.float64)
    nz = ln > 0
    if nz.any():
        out[nz] = np.add.reduceat(ints.astype(np.float64, copy=False), starts[nz])
    return out


def _gather(
    buf: mmap.mmap | bytes,
    view: np.ndarray,
    offsets: np.ndarray,
    ln: np.ndarray,
    starts: np.ndarray,
    total: int,
) -> np.ndarray:
    """Concatenate the arrays of a run of spectra."""
    size = view.dtype.itemsize
    breaks = np.flatnonzero(offsets[1:] - offsets[:-1] != ln[:-1] * size) + 1
    if breaks.size < 64:
        # arrays lie back to back in the .ibd (in a few runs): plain memory copies
        edges = np.concatenate([[0], breaks, [offsets.size]])
        parts = [
            np.frombuffer(
                buf,
                dtype=view.dtype,
                offset=int(offsets[a]),
                count=int(starts[b - 1] + ln[b - 1] - starts[a]),
            )
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    idx = np.arange(total, dtype=np.int64)
    idx *= size
    idx += np.repeat(offsets - starts * size, ln)
    return view[idx]


# Outside this range a "m/z value" is bytes from somewhere else (no instrument measures it).
_MZ_SANE = (1e-3, 1e7)


def _check_mz(values: np.ndarray, spectrum: np.ndarray) -> None:
    """Refuse m/z values no instrument produces: the offsets then point at the wrong data.

    `spectrum` gives the 0-based spectrum index of each value, for the message.
    """
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(v) & ((v == 0) | ((v >= _MZ_SANE[0]) & (v < _MZ_SANE[1]))))
    if bad.any():
        i = int(np.argmax(bad))
        raise MSIError(
            f"the .ibd file does not match its .imzML: spectrum "
            f"{int(spectrum[i]) + 1:,} holds the m/z value {v[i]:.6g}, which no "
            "instrument measures, so the offsets point at the wrong data"
        )


def _decode_run(
    buf: mmap.mmap | bytes,
    offsets: np.ndarray,
    encs: np.ndarray,
    lens: np.ndarray,
    dtype: np.dtype,
    first: int,
    what: str,
    spectra: np.ndarray | None = None,
) -> np.ndarray:
    """Decompress (zlib) the arrays of a run of spectra and concatenate them.

    Every array must decode to exactly its declared number of values: anything else means a
    damaged or mismatched .ibd, and half-right images would be worse than a clear refusal.
    Spectra are numbered first, first + 1, ... in messages, or as `spectra` says.
    """
    size = dtype.itemsize
    parts = []
    for i in range(offsets.size):
        want = int(lens[i]) * size
        if want == 0:
            continue
        off, enc = int(offsets[i]), int(encs[i])
        # no encoded length given: read up to zlib's worst-case expansion; the decoder stops
        # at the end of the stream on its own
        stop = off + enc if enc >= 0 else off + want + 5 * (want // 16000 + 1) + 64
        d = zlib.decompressobj()
        try:
            data = d.decompress(buf[off:stop], want + 1)  # +1: notices too long arrays
        except zlib.error:
            data = b""
        if len(data) != want or not d.eof:
            number = int(spectra[i]) if spectra is not None else first + i
            raise MSIError(
                f"the .ibd file does not match its .imzML: the compressed {what} of "
                f"spectrum {number + 1:,} cannot be decoded (damaged or from "
                "another file)"
            )
        parts.append(data)
    return np.frombuffer(b"".join(parts), dtype=dtype)


def _release(buf: mmap.mmap | bytes, offsets: tuple[np.ndarray, ...], ends: tuple[np.ndarray, ...]) -> None:
    """Drop the pages of a finished chunk from this process's map.

    Mapped file pages count in RSS until unmapped; without this a 5 GB .ibd would show as
    5 GB of resident memory. The kernel keeps them in the page cache either way.
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if not isinstance(buf, mmap.mmap) or not hasattr(buf, "madvise") or advice is None:
        return
    lo = min(int(o.min()) for o in offsets if o.size)
    hi = max(int(e.max()) for e in ends if e.size)
    page = mmap.PAGESIZE
    lo -= lo % page
    hi -= hi % page  # keep the partial last page: the next chunk may start in it
    if hi > lo:
        buf.madvise(advice, lo, hi - lo)


def _mz_range(meta: ImzMLMeta, buf: mmap.mmap | bytes, view_mz: np.ndarray) -> tuple[float, float]:
    """Smallest and largest m/z, from each spectrum's first and last value (spectra are
    sorted), so the mean-spectrum grid is known before the pass. Probes in batches and
    unmaps them, since probing touches nearly every page of the file."""
    lo, hi = np.inf, -np.inf
    size = meta.mz_dtype.itemsize
    for s0 in range(0, meta.n_spectra, 8192):
        off = meta.mz_offsets[s0 : s0 + 8192]
        ln = meta.mz_lengths[s0 : s0 + 8192].astype(np.int64)
        nz = ln > 0
        if not nz.any():
            continue
        last_pos = off[nz] + (ln[nz] - 1) * size
        vals = np.concatenate([view_mz[off[nz]], view_mz[last_pos]]).astype(np.float64)
        idx = np.flatnonzero(nz) + s0
        _check_mz(vals, np.concatenate([idx, idx]))
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if vals.size:
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
        _release(buf, (off[nz],), (last_pos + size,))
    if not np.isfinite(lo):
        return 1.0, 2.0
    return lo, hi


def _mz_range_sampled(meta: ImzMLMeta, buf: mmap.mmap | bytes) -> tuple[float, float]:
    """m/z range of compressed m/z arrays, from at most _RANGE_SAMPLE of them.

    Only a full decode finds an array's last value, and decoding every array twice cost a
    third of the extraction. Peaks outside the sampled range are still imaged exactly (the
    edge bins of the lookup table are searched exactly) and are set aside for the mean
    spectrum (`_Overflow`), so the result does not depend on the sample.
    """
    offs, first = np.unique(meta.mz_offsets, return_index=True)
    if first.size > _RANGE_SAMPLE:
        first = first[np.linspace(0, first.size - 1, _RANGE_SAMPLE).round().astype(np.int64)]
    first.sort()  # file order of the spectra, so reads move forward
    lo, hi = np.inf, -np.inf
    lens = meta.mz_lengths.astype(np.int64)
    b0 = 0
    while b0 < first.size:
        # batches of about _CHUNK_VALUES values, as in the main pass
        csum = np.cumsum(lens[first[b0:]])
        b1 = b0 + max(1, int(np.searchsorted(csum, _CHUNK_VALUES, side="right")))
        idx = first[b0:b1]
        mz = _decode_run(
            buf,
            meta.mz_offsets[idx],
            meta.mz_encoded_lengths[idx],
            lens[idx],
            meta.mz_dtype,
            0,
            "m/z values",
            spectra=idx,
        )
        vals = mz[np.isfinite(mz) & (mz > 0)]
        if vals.size:
            lo, hi = min(lo, float(vals.min())), max(hi, float(vals.max()))
        enc = meta.mz_encoded_lengths[idx]
        _release(buf, (meta.mz_offsets[idx],), (meta.mz_offsets[idx] + np.maximum(enc, 0),))
        b0 = b1
    if not np.isfinite(lo):
        return 1.0, 2.0
    return lo, hi


class _Overflow:
    """Peaks beyond a sampled m/z range, kept for the mean spectrum as (intensity, intensity
    x m/z) pairs, the same form as the fine bins. Merged on a ppm/8 log grid whenever they
    grow past _OVERFLOW_MAX, so memory stays bounded even if the sample was poor."""

    def __init__(self, ppm: float) -> None:
        self.acc: list[np.ndarray] = []
        self.wmz: list[np.ndarray] = []
        self.size = 0
        self.lo, self.hi = np.inf, -np.inf
        self.step = np.log1p(ppm * 0.125e-6)

    def add(self, mz: np.ndarray, ints: np.ndarray) -> None:
        mz = mz.astype(np.float64)
        ints = ints.astype(np.float64)
        self.lo, self.hi = min(self.lo, float(mz.min())), max(self.hi, float(mz.max()))
        self.acc.append(ints)
        self.wmz.append(ints * mz)
        self.size += mz.size
        if self.size > _OVERFLOW_MAX:
            self._merge()

    def _merge(self) -> None:
        acc, wmz = np.concatenate(self.acc), np.concatenate(self.wmz)
        keep = acc > 0  # zero intensity adds nothing (the range is tracked apart)
        acc, wmz = acc[keep], wmz[keep]
        key = np.round(np.log(wmz / acc) / self.step).astype(np.int64)
        uniq, inv = np.unique(key, return_inverse=True)
        self.acc = [np.bincount(inv, weights=acc, minlength=uniq.size)]
        self.wmz = [np.bincount(inv, weights=wmz, minlength=uniq.size)]
        self.size = uniq.size

    def take(
        self,
        mz: np.ndarray,
        ints: np.ndarray,
        starts: np.ndarray,
        ln: np.ndarray,
        s0: int,
        mz_range: tuple[float, float],
    ) -> np.ndarray:
        """Keep the peaks outside the sampled m/z range here; the intensities left for the
        mean spectrum's fine bins (those peaks zeroed)."""
        mz_lo, mz_hi = mz_range
        nz = ln > 0
        firsts = starts[nz]
        _check_mz(np.concatenate([mz[firsts], mz[firsts + ln[nz] - 1]]), np.tile(np.flatnonzero(nz) + s0, 2))
        with np.errstate(invalid="ignore"):
            out = ((mz < mz_lo) | (mz > mz_hi)) & (mz > 0)
        if not out.any():
            return ints
        self.add(mz[out], ints[out])
        return np.where(out, 0, ints)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.acc:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(self.acc), np.concatenate(self.wmz)


def _read_chunk(
    meta: ImzMLMeta,
    f: BinaryIO,
    buf: mmap.mmap | bytes,
    views: tuple[np.ndarray, np.ndarray],
    scratch: bytearray,
    s0: int,
    s1: int,
    ln: np.ndarray,
    starts: np.ndarray,
    total: int,
) -> tuple[np.ndarray, np.ndarray, bytearray]:
    """m/z values and intensities of spectra s0..s1 laid end to end (and the reused buffer)."""
    view_mz, view_int = views
    msz, isz = meta.mz_dtype.itemsize, meta.int_dtype.itemsize
    mo, io = meta.mz_offsets[s0:s1], meta.int_offsets[s0:s1]
    ends_m, ends_i = mo + ln * msz, io + ln * isz
    lo = int(min(mo.min(), io.min()))
    span = int(max(ends_m.max(), ends_i.max())) - lo
    if meta.compressed:
        if meta.mz_compression:
            enc = meta.mz_encoded_lengths[s0:s1]
            mz = _decode_run(buf, mo, enc, ln, meta.mz_dtype, s0, "m/z values")
            ends_m = mo + np.maximum(enc, 0)
        else:
            mz = _gather(buf, view_mz, mo, ln, starts, total)
        if meta.int_compression:
            enc = meta.int_encoded_lengths[s0:s1]
            ints = _decode_run(buf, io, enc, ln, meta.int_dtype, s0, "intensities")
            ends_i = io + np.maximum(enc, 0)
        else:
            ints = _gather(buf, view_int, io, ln, starts, total)
        _release(buf, (mo, io), (ends_m, ends_i))
    elif _READ_SPAN_RATIO > 0 and span <= _READ_SPAN_RATIO * total * (msz + isz) + (1 << 20):
        # the chunk's arrays sit close together (the usual layout): one read() into a
        # reused buffer beats faulting in mapped pages one by one
        if len(scratch) < span:
            scratch = bytearray(span)
        f.seek(lo)
        f.readinto(memoryview(scratch)[:span])
        mz = _gather(scratch, _byte_view(scratch, meta.mz_dtype, span), mo - lo, ln, starts, total)
        ints = _gather(scratch, _byte_view(scratch, meta.int_dtype, span), io - lo, ln, starts, total)
    else:
        mz = _gather(buf, view_mz, mo, ln, starts, total)
        ints = _gather(buf, view_int, io, ln, starts, total)
        _release(buf, (mo, io), (ends_m, ends_i))
    return mz, ints, scratch


def _run_processed(
    meta: ImzMLMeta,
    f: BinaryIO,
    buf: mmap.mmap | bytes,
    win: _Windows,
    clean: _Cleaner,
    images: np.ndarray,
    tic: np.ndarray,
    tic_normalise: bool,
    prog: _Progress,
    ppm: float,
) -> tuple[np.ndarray, np.ndarray]:
    n = meta.n_spectra
    view_mz = _byte_view(buf, meta.mz_dtype, meta.ibd_size)
    view_int = _byte_view(buf, meta.int_dtype, meta.ibd_size)
    # compressed m/z arrays: the range comes from a sample, peaks beyond it overflow
    overflow = _Overflow(ppm) if meta.mz_compression else None
    if overflow is not None:
        mz_lo, mz_hi = _mz_range_sampled(meta, buf)
    else:
        mz_lo, mz_hi = _mz_range(meta, buf, view_mz)
    if mz_hi <= mz_lo:
        mz_hi = mz_lo * (1 + 1e-3)
    # Fine linear bins serve twice: a lookup table that spares most peaks a binary search,
    # and the accumulator of the mean spectrum (re-binned on a log grid at the end).
    nfine = _FINE_BINS
    inv = nfine / (mz_hi - mz_lo)
    lut = _fine_lut(win, mz_lo, inv, nfine) if win.k else None
    fine_acc = np.zeros(nfine, dtype=np.float64)
    fine_mz = np.zeros(nfine, dtype=np.float64)  # intensity-weighted m/z: sharp peak centres
    lens = meta.mz_lengths.astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(lens)])
    scratch = bytearray()
    s0 = 0
    while s0 < n:
        s1 = int(np.searchsorted(csum, csum[s0] + _CHUNK_VALUES, side="right")) - 1
        s1 = max(s0 + 1, min(n, s1))
        ln = lens[s0:s1]
        total = int(csum[s1] - csum[s0])
        nc = s1 - s0
        starts = csum[s0:s1] - csum[s0]
        mz, ints, scratch = _read_chunk(meta, f, buf, (view_mz, view_int), scratch, s0, s1, ln, starts, total)
        ints = clean(ints)
        tics = _spectrum_sums(ints, starts, ln)
        fine = ((mz - mz_lo) * inv).astype(np.int64)
        np.clip(fine, 0, nfine - 1, out=fine)
        w_mean = ints if overflow is None else overflow.take(mz, ints, starts, ln, s0, (mz_lo, mz_hi))
        fine_acc += np.bincount(fine, weights=w_mean, minlength=nfine)
        fine_mz += np.bincount(fine, weights=w_mean * mz, minlength=nfine)
        if win.k:
            seg = win.segments(mz, fine, lut)
            vals = win.ion_sums(starts, seg, ints, nc)
        else:
            vals = np.zeros((0, nc))
        _store(images, tic, meta.ys[s0:s1], meta.xs[s0:s1], vals, tics, tic_normalise)
        del mz, ints
        prog(s1 / n)
        s0 = s1
    if overflow is not None and overflow.size:
        # the overflow pairs join the fine bins: _rebin_log places each by its own m/z
        acc, wmz = overflow.arrays()
        fine_acc, fine_mz = np.concatenate([fine_acc, acc]), np.concatenate([fine_mz, wmz])
        mz_lo, mz_hi = min(mz_lo, overflow.lo), max(mz_hi, overflow.hi)
    return _rebin_log(fine_acc, fine_mz, mz_lo, mz_hi, ppm, n)


def _rebin_log(
    fine_acc: np.ndarray, fine_mz: np.ndarray, mz_lo: float, mz_hi: float, ppm: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean spectrum on a log grid: bins ppm/2 wide, coarser if that would exceed the cap.

    Each bin's m/z is the intensity-weighted mean of the peaks in it, so isolated peaks
    keep their exact position whatever the bin width.
    """
    span = np.log(mz_hi / mz_lo)
    step = max(np.log1p(ppm * 0.5e-6), span / _MAX_MEAN_BINS)
    nbins = int(span / step) + 1
    has = fine_acc > 0
    fine_centre = np.where(has, fine_mz / np.where(has, fine_acc, 1), mz_lo)
    b = np.clip((np.log(np.maximum(fine_centre, mz_lo) / mz_lo) / step).astype(np.int64), 0, nbins - 1)
    total = np.bincount(b, weights=fine_acc, minlength=nbins)
    wmz = np.bincount(b, weights=fine_mz, minlength=nbins)
    centres = mz_lo * np.exp((np.arange(nbins) + 0.5) * step)
    mz = np.where(total > 0, wmz / np.where(total > 0, total, 1), centres)
    return mz, total / max(n, 1)
