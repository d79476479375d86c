"""imzML files of every kind, written by pyimzml's ImzMLWriter, and an independent reference.

Each variant is written twice from the same spectra: as asked (compressed, 16-bit, ...) and as
an uncompressed "twin" in a number type pyimzml's parser reads. The reference ion images come
from pyimzml's `getionimage` on the twin, so they share no code with IonSieve's reader, and
pyimzml 1.5's parser does not decompress (it reads `length x item size` raw bytes).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyimzml.compression import NoCompression, ZlibCompression
from pyimzml.ImzMLParser import ImzMLParser, getionimage
from pyimzml.ImzMLWriter import ImzMLWriter

# number types pyimzml's parser cannot read, and the one their values are copied into
_TWIN_DTYPE = {np.dtype(np.float16): np.float32, np.dtype(np.int16): np.int32, np.dtype(np.int8): np.int32}


_IMS_INTS = {
    np.dtype(np.int8): 'cvRef="IMS" accession="IMS:1100000" name="8-bit integer"',
    np.dtype(np.int16): 'cvRef="IMS" accession="IMS:1100001" name="16-bit integer"',
}


class _Writer(ImzMLWriter):
    """pyimzml's writer, letting 8/16-bit integer arrays through under a placeholder name."""

    @staticmethod
    def _np_type_to_name(dtype: type) -> str:
        if np.dtype(dtype) in _IMS_INTS:
            return "16-bit float"  # replaced in the XML afterwards
        return ImzMLWriter._np_type_to_name(dtype)


@dataclass
class Variant:
    imzml: Path
    twin: Path  # same spectra, uncompressed, a number type pyimzml reads
    ions: np.ndarray  # m/z values worth imaging
    acquired: np.ndarray  # bool (h, w)
    shape: tuple[int, int]


def write_variant(
    stem: Path,
    *,
    mode: str = "processed",
    mz_dtype: type = np.float64,
    int_dtype: type = np.float32,
    mz_zlib: bool = False,
    int_zlib: bool = False,
    spec_type: str = "centroid",
    shuffle: bool = True,
    holes: bool = True,
    height: int = 9,
    width: int = 13,
    seed: int = 0,
    axes: int = 0,
) -> Variant:
    """mode: the writer's ("processed", "continuous" or "auto"); axes > 0: spectra share that
    many m/z arrays (so that "auto" writes each array once and spectra point at them)."""
    rng = np.random.default_rng(seed)
    ions = np.sort(rng.uniform(200, 900, 6))
    acquired = np.ones((height, width), bool)
    if holes:
        acquired &= rng.random((height, width)) > 0.2  # scattered missing pixels
        acquired[0, : width // 2] = False  # and a ragged edge (non-rectangular grid)
        acquired[-1, -1] = True  # keep the grid size
    ys, xs = np.nonzero(acquired)
    order = rng.permutation(ys.size) if shuffle else np.arange(ys.size)
    idt = np.dtype(int_dtype)
    shared_axis = np.sort(
        np.concatenate([ions * (1 + rng.uniform(-1e-6, 1e-6, ions.size)), rng.uniform(150, 950, 120)])
    )
    pool = [
        np.sort(np.concatenate([ions, rng.uniform(150, 190, 2), rng.uniform(150, 950, 30)]))
        for _ in range(axes)
    ]
    spectra = []
    for i in order:
        if mode == "continuous":
            mz = shared_axis
        elif axes:
            mz = pool[rng.integers(axes)]
        else:
            keep = ions[rng.random(ions.size) < 0.7]
            # two peaks below every ion: getionimage (pyimzml 1.5) adds the first peak to a
            # window that has fewer than two peaks at or below its upper bound
            mz = np.sort(
                np.concatenate(
                    [
                        keep * (1 + rng.uniform(-1e-6, 1e-6, keep.size)),
                        rng.uniform(150, 950, rng.integers(0, 40)),
                        rng.uniform(150, 190, 2),
                    ]
                )
            )
        if idt.kind == "i":
            top = min(np.iinfo(idt).max, 5000)
            inten = rng.integers(0, top, mz.size)
        else:
            # integers below 2,048 are exact in every float type, so twins hold equal values
            inten = rng.integers(0, 2048, mz.size).astype(np.float64)
            if idt.itemsize >= 4:
                inten = inten + rng.random(mz.size) * (idt.itemsize >= 8)
        spectra.append((mz, inten, (int(xs[i]) + 1, int(ys[i]) + 1)))

    def write(path: Path, mzd: type, intd: type, mzc: bool, intc: bool) -> None:
        with _Writer(
            str(path),
            mz_dtype=mzd,
            intensity_dtype=intd,
            mode=mode,
            spec_type=spec_type,
            mz_compression=ZlibCompression() if mzc else NoCompression(),
            intensity_compression=ZlibCompression() if intc else NoCompression(),
            polarity="positive",
        ) as w:
            for mz, inten, xy in spectra:
                w.addSpectrum(mz, inten, xy)
        if np.dtype(intd) in _IMS_INTS:
            # the writer only names PSI-MS types: swap in the imzML term for 8/16-bit integers
            text = path.read_text(encoding="latin-1")
            ours = 'cvRef="MS" accession="MS:1000520" name="16-bit float"'
            assert text.count(ours) == 1
            path.write_text(text.replace(ours, _IMS_INTS[np.dtype(intd)]), encoding="latin-1")

    stem.parent.mkdir(parents=True, exist_ok=True)
    imzml, twin = stem.with_suffix(".imzML"), stem.with_name(stem.name + "_twin.imzML")
    write(imzml, mz_dtype, int_dtype, mz_zlib, int_zlib)
    write(twin, _TWIN_DTYPE.get(np.dtype(mz_dtype), mz_dtype), _TWIN_DTYPE.get(idt, int_dtype), False, False)
    return Variant(imzml, twin, ions, acquired, (height, width))


def reference_images(v: Variant, mzs: np.ndarray, ppm: float = 3.0) -> np.ndarray:
    """pyimzml getionimage on the uncompressed twin; NaN where no spectrum was acquired."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(str(v.twin))
    out = np.stack([getionimage(p, m, tol=m * ppm * 1e-6) for m in mzs]).astype(np.float64)
    out[:, ~v.acquired] = np.nan
    return out


def reference_tic(v: Variant) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = ImzMLParser(str(v.twin))
    tic = np.full(v.shape, np.nan)
    for i, (x, y, _z) in enumerate(p.coordinates):
        tic[y - 1, x - 1] = p.getspectrum(i)[1].astype(np.float64).sum()
    return tic
