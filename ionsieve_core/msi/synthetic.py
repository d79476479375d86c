"""Synthetic but realistic MSI datasets, written as real imzML + ibd files.

Used by the demo, the tests and the benchmark. The layout mimics a tissue section on a
slide coated with matrix: a blob of tissue (30-70 % of the grid) surrounded by background.
On-sample ions live in the tissue (gradients, sub-regions, hotspots); off-sample ions live
in the background (matrix clusters), as halos around the tissue, or everywhere with ion
suppression on the tissue. Noise peaks fill the rest of each spectrum.

`truth.images` holds the exact value each ion should have in a ±3 ppm window, so extraction
can be tested without any other reader. Files are written in vectorised chunks (100,000+
pixels in seconds) and are readable by pyimzml.
"""

from __future__ import annotations

import os
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Noise peaks are kept this far (relative) from every ion so that truth.images is exact
# for any extraction window up to this width.
_NOISE_CLEARANCE_PPM = 12.0
_ION_SPACING_PPM = 60.0
_PIXELS_PER_CHUNK = 4096


@dataclass
class SyntheticTruth:
    ions: list[tuple[float, str]]  # (m/z, "on" | "off"), ascending m/z
    tissue_mask: np.ndarray  # bool (h, w)
    acquired_mask: np.ndarray  # bool (h, w)
    images: np.ndarray  # float32 (n_ions, h, w) exact ion intensities, 0 where not acquired
    kinds: list[str] = field(default_factory=list)  # pattern name per ion
    imzml_path: str = ""
    ibd_path: str = ""
    n_nan: int = 0
    n_negative: int = 0


def _smooth_field(h: int, w: int, rng: np.random.Generator, cells: int = 5) -> np.ndarray:
    """Smooth random field in ~[0, 1]: bilinear upsampling of a coarse random grid."""
    coarse = rng.random((cells + 1, cells + 1))
    yi = np.linspace(0, cells, h)
    xi = np.linspace(0, cells, w)
    y0 = np.minimum(yi.astype(int), cells - 1)
    x0 = np.minimum(xi.astype(int), cells - 1)
    fy = (yi - y0)[:, None]
    fx = (xi - x0)[None, :]
    c00 = coarse[np.ix_(y0, x0)]
    c01 = coarse[np.ix_(y0, x0 + 1)]
    c10 = coarse[np.ix_(y0 + 1, x0)]
    c11 = coarse[np.ix_(y0 + 1, x0 + 1)]
    return c00 * (1 - fy) * (1 - fx) + c01 * (1 - fy) * fx + c10 * fy * (1 - fx) + c11 * fy * fx


def _box_blur(img: np.ndarray, r: int) -> np.ndarray:
    """Separable box blur via cumulative sums (no scipy needed)."""
    out = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r + 1, r)
        p = np.pad(out, pad, mode="edge")
        c = np.cumsum(p, axis=axis)
        n = out.shape[axis]
        hi = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis)
        lo = np.take(c, np.arange(0, n), axis=axis)
        out = (hi - lo) / (2 * r + 1)
    return out


def _tissue(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h * rng.uniform(0.4, 0.6), w * rng.uniform(0.4, 0.6)
    ry, rx = h * rng.uniform(0.3, 0.4), w * rng.uniform(0.3, 0.4)
    ang = rng.uniform(0, np.pi)
    dy, dx = (yy - cy) / ry, (xx - cx) / rx
    r2 = (dy * np.cos(ang) + dx * np.sin(ang)) ** 2 + (dx * np.cos(ang) - dy * np.sin(ang)) ** 2
    score = r2 + 0.6 * _smooth_field(h, w, rng, cells=4)
    coverage = rng.uniform(0.35, 0.6)
    return score <= np.quantile(score, coverage)


def _acquired(h: int, w: int, rng: np.random.Generator, non_rectangular: bool) -> np.ndarray:
    acq = np.ones((h, w), dtype=bool)
    if not non_rectangular:
        return acq
    # ragged row ends (as when a user draws a region) and a few dropped pixels; the middle
    # row and column stay complete so the grid size is unchanged
    for y in range(h):
        cut_l = int(rng.integers(0, max(1, w // 6)))
        cut_r = int(rng.integers(0, max(1, w // 6)))
        acq[y, :cut_l] = False
        acq[y, w - cut_r :] = False
    acq &= rng.random((h, w)) > 0.02
    acq[h // 2, :] = True
    acq[:, w // 2] = True
    acq[h - 1, w - 1] = True
    return acq


def _patterns(
    h: int, w: int, tissue: np.ndarray, n_on: int, n_off: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    t = tissue.astype(np.float64)
    soft = _box_blur(t, max(1, min(h, w) // 40))
    bg = 1.0 - t
    out, kinds = [], []
    for i in range(n_on):
        style = ("gradient", "subregion", "hotspots", "smooth")[i % 4]
        if style == "gradient":
            a = rng.uniform(0, 2 * np.pi)
            g = 0.3 + (np.cos(a) * xx + np.sin(a) * yy)
            img = (g - g.min() + 0.2) * soft
        elif style == "subregion":
            sub = _smooth_field(h, w, rng, cells=6) > 0.55
            img = (0.2 + sub) * soft
        elif style == "hotspots":
            img = 0.3 * soft
            ty, tx = np.nonzero(tissue)
            for _ in range(int(rng.integers(3, 8))):
                j = int(rng.integers(0, ty.size))
                s = rng.uniform(0.01, 0.04)
                img += (
                    2.0
                    * np.exp(-((yy - ty[j] / max(h, w)) ** 2 + (xx - tx[j] / max(h, w)) ** 2) / (2 * s * s))
                    * t
                )
        else:
            img = (0.3 + _smooth_field(h, w, rng, cells=5)) * soft
        out.append(img)
        kinds.append(f"on:{style}")
    halo_src = _box_blur(t, max(2, min(h, w) // 15))
    for i in range(n_off):
        style = ("matrix", "halo", "suppressed", "matrix_gradient")[i % 4]
        if style == "matrix":
            img = bg * (0.8 + 0.4 * _smooth_field(h, w, rng, cells=3))
        elif style == "halo":
            img = np.clip(halo_src * bg * 3.0, 0, None)
        elif style == "suppressed":
            img = np.ones((h, w)) * (1.0 - 0.6 * soft)
        else:
            img = bg * (0.2 + xx)
        out.append(img)
        kinds.append(f"off:{style}")
    pats = np.stack(out) if out else np.zeros((0, h, w))
    pats /= np.maximum(pats.reshape(pats.shape[0], -1).max(axis=1), 1e-12)[:, None, None]
    return pats, kinds


def _ion_mzs(n: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """n m/z values in [lo, hi], pairwise at least _ION_SPACING_PPM apart."""
    for _ in range(100):
        mz = np.sort(rng.uniform(lo, hi, n))
        if n < 2 or np.all(np.diff(mz) / mz[1:] > _ION_SPACING_PPM * 1e-6):
            return np.round(mz, 4)
    raise ValueError("cannot place that many well-separated ions in the m/z range")


def _noise_mz(count: int, ions: np.ndarray, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    mz = rng.uniform(lo, hi, count)
    if ions.size:
        j = np.clip(np.searchsorted(ions, mz), 1, ions.size) - 1
        for cand in (j, np.minimum(j + 1, ions.size - 1)):
            near = np.abs(mz - ions[cand]) <= _NOISE_CLEARANCE_PPM * 1e-6 * ions[cand]
            mz[near] = ions[cand][near] * (1 + 2.5 * _NOISE_CLEARANCE_PPM * 1e-6)
    return mz


_HEADER = """<?xml version="1.0" encoding="ISO-8859-1"?>
<mzML xmlns="http://psi.hupo.org/ms/mzml" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    version="1.1">
  <cvList count="3">
    <cv URI="https://raw.githubusercontent.com/hupo-psi/psi-ms-cv/master/psi-ms.obo"
        fullName="Proteomics Standards Initiative Mass Spectrometry Ontology" id="MS"
        version="4.1.0"/>
    <cv URI="https://raw.githubusercontent.com/imzML/imzML/master/imagingMS.obo"
        fullName="Mass Spectrometry Imaging Ontology" id="IMS" version="1.1.0"/>
    <cv URI="http://ontologies.berkeleybop.org/uo.obo" fullName="Units of Measurement Ontology"
        id="UO" version="releases/2017-09-25"/>
  </cvList>
  <fileDescription>
    <fileContent>
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="{spec_acc}" name="{spec_name}" value=""/>
      <cvParam cvRef="IMS" accession="{mode_acc}" name="{mode_name}" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000080" name="universally unique identifier"
          value="{{{uuid}}}"/>
    </fileContent>
  </fileDescription>
  <referenceableParamGroupList count="4">
    <referenceableParamGroup id="mzArray">
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="MS" accession="MS:1000514" name="m/z array" value="" unitCvRef="MS"
          unitAccession="MS:1000040" unitName="m/z"/>
      <cvParam cvRef="MS" accession="{mz_acc}" name="{mz_name}" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="intensityArray">
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="MS" accession="MS:1000515" name="intensity array" value="" unitCvRef="MS"
          unitAccession="MS:1000131" unitName="number of detector counts"/>
      <cvParam cvRef="MS" accession="{int_acc}" name="{int_name}" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="scan1">
      <cvParam cvRef="MS" accession="MS:1000093" name="increasing m/z scan" value=""/>
    </referenceableParamGroup>
    <referenceableParamGroup id="spectrum1">
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>
      <cvParam cvRef="MS" accession="{spec_acc}" name="{spec_name}" value=""/>
      <cvParam cvRef="MS" accession="MS:1000130" name="positive scan" value=""/>
    </referenceableParamGroup>
  </referenceableParamGroupList>
  <sampleList count="1">
    <sample id="sample1" name="synthetic tissue section">
      <cvParam cvRef="MS" accession="MS:1000001" name="sample number" value="1"/>
    </sample>
  </sampleList>
  <softwareList count="1">
    <software id="ionsieve" version="1.0">
      <cvParam cvRef="MS" accession="MS:1000799" name="custom unreleased software tool"
          value="IonSieve synthetic generator"/>
    </software>
  </softwareList>
  <scanSettingsList count="1">
    <scanSettings id="scanSettings1">
      <cvParam cvRef="IMS" accession="IMS:1000401" name="top down" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000413" name="flyback" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000480" name="horizontal line scan" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000491" name="linescan left right" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000042" name="max count of pixels x" value="{width}"/>
      <cvParam cvRef="IMS" accession="IMS:1000043" name="max count of pixels y" value="{height}"/>
      <cvParam cvRef="IMS" accession="IMS:1000046" name="pixel size (x)" value="{pixel_um}"
          unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
      <cvParam cvRef="IMS" accession="IMS:1000047" name="pixel size y" value="{pixel_um}"
          unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>
    </scanSettings>
  </scanSettingsList>
  <instrumentConfigurationList count="1">
    <instrumentConfiguration id="IC1">
      <cvParam cvRef="MS" accession="MS:1000031" name="instrument model"
          value="IonSieve synthetic Orbitrap"/>
      <componentList count="3">
        <source order="1">
          <cvParam cvRef="MS" accession="MS:1000075"
              name="matrix-assisted laser desorption ionization" value=""/>
        </source>
        <analyzer order="2">
          <cvParam cvRef="MS" accession="MS:1000484" name="orbitrap" value=""/>
        </analyzer>
        <detector order="3">
          <cvParam cvRef="MS" accession="MS:1000624" name="inductive detector" value=""/>
        </detector>
      </componentList>
      <softwareRef ref="ionsieve"/>
    </instrumentConfiguration>
  </instrumentConfigurationList>
  <dataProcessingList count="1">
    <dataProcessing id="synthetic">
      <processingMethod order="1" softwareRef="ionsieve">
        <cvParam cvRef="MS" accession="MS:1000544" name="Conversion to mzML" value=""/>
      </processingMethod>
    </dataProcessing>
  </dataProcessingList>
  <run defaultInstrumentConfigurationRef="IC1" id="synthetic_run" sampleRef="sample1">
    <spectrumList count="{n_spectra}" defaultDataProcessingRef="synthetic">
"""

_SPECTRUM = """      <spectrum id="spectrum={i1}" defaultArrayLength="0" index="{i0}">
        <referenceableParamGroupRef ref="spectrum1"/>
        <scanList count="1">
          <cvParam cvRef="MS" accession="MS:1000795" name="no combination" value=""/>
          <scan instrumentConfigurationRef="IC1">
            <referenceableParamGroupRef ref="scan1"/>
            <cvParam cvRef="IMS" accession="IMS:1000050" name="position x" value="{x}"/>
            <cvParam cvRef="IMS" accession="IMS:1000051" name="position y" value="{y}"/>
          </scan>
        </scanList>
        <binaryDataArrayList count="2">
          <binaryDataArray encodedLength="0">
            <referenceableParamGroupRef ref="mzArray"/>
            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{mo}"/>
            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{n}"/>
            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length"
                value="{me}"/>
            <binary/>
          </binaryDataArray>
          <binaryDataArray encodedLength="0">
            <referenceableParamGroupRef ref="intensityArray"/>
            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{io}"/>
            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{n}"/>
            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length"
                value="{ie}"/>
            <binary/>
          </binaryDataArray>
        </binaryDataArrayList>
      </spectrum>
"""

_FOOTER = """    </spectrumList>
  </run>
</mzML>
"""

_DTYPE_TERMS = {
    np.dtype("float32"): ("MS:1000521", "32-bit float"),
    np.dtype("float64"): ("MS:1000523", "64-bit float"),
}


def _header(
    mode: str,
    uid: uuidlib.UUID,
    mzd: np.dtype,
    intd: np.dtype,
    *,
    width: int,
    height: int,
    n_spectra: int,
    pixel_um: float,
) -> str:
    spec_acc, spec_name = (
        ("MS:1000127", "centroid spectrum") if mode == "processed" else ("MS:1000128", "profile spectrum")
    )
    mode_acc, mode_name = (
        ("IMS:1000031", "processed") if mode == "processed" else ("IMS:1000030", "continuous")
    )
    return _HEADER.format(
        spec_acc=spec_acc,
        spec_name=spec_name,
        mode_acc=mode_acc,
        mode_name=mode_name,
        uuid=str(uid).upper(),
        mz_acc=_DTYPE_TERMS[mzd][0],
        mz_name=_DTYPE_TERMS[mzd][1],
        int_acc=_DTYPE_TERMS[intd][0],
        int_name=_DTYPE_TERMS[intd][1],
        width=width,
        height=height,
        n_spectra=n_spectra,
        pixel_um=pixel_um,
    )


def _continuous_axis(
    ion_mz: np.ndarray, mz_range: tuple[float, float], n_grid: int, mzd: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The shared m/z axis (a grid kept clear of the ions, plus the ions) and the ions' columns."""
    grid = np.linspace(mz_range[0], mz_range[1], max(n_grid, 2))
    keep = np.ones(grid.size, bool)
    j = np.clip(np.searchsorted(ion_mz, grid), 1, max(ion_mz.size, 1)) - 1
    if ion_mz.size:
        for cand in (j, np.minimum(j + 1, ion_mz.size - 1)):
            keep &= np.abs(grid - ion_mz[cand]) > _NOISE_CLEARANCE_PPM * 1e-6 * ion_mz[cand]
    shared_axis = np.concatenate([grid[keep], ion_mz]).astype(mzd)
    axis_order = np.argsort(shared_axis, kind="stable")
    ion_cols = np.argsort(axis_order)[grid[keep].size :]
    return shared_axis[axis_order], ion_cols


@dataclass
class _ChunkPixels:
    pixels: np.ndarray  # pixel (within the chunk) of each peak, sorted by pixel then m/z
    ion_peaks: np.ndarray  # positions of the ion peaks (bad values go in noise peaks only)


def _processed_peaks(
    a: np.ndarray,
    ion_mz: np.ndarray,
    mz_range: tuple[float, float],
    noise_peaks: int,
    dtypes: tuple[np.dtype, np.dtype],
    rng: np.random.Generator,
) -> tuple[_ChunkPixels, np.ndarray, np.ndarray]:
    """Centroided peaks of one chunk of pixels: ion peaks (a: pixels x ions) plus noise."""
    mzd, intd = dtypes
    nc = a.shape[0]
    counts = rng.poisson(noise_peaks, nc)
    noise_pix = np.repeat(np.arange(nc), counts)
    noise_mz = _noise_mz(int(counts.sum()), ion_mz, *mz_range, rng=rng)
    noise_int = (rng.exponential(1.0, noise_pix.size) * 50.0).astype(intd)
    ion_pix, ion_j = np.nonzero(a > 0)
    jitter = rng.uniform(-0.5, 0.5, ion_pix.size) * 1e-6  # within ±0.5 ppm
    pix = np.concatenate([ion_pix, noise_pix])
    mzv = np.concatenate([ion_mz[ion_j] * (1 + jitter), noise_mz])
    inten = np.concatenate([a[ion_pix, ion_j], noise_int])
    key = pix + (mzv - mz_range[0] * 0.5) / (mz_range[1] * 2.0)
    srt = np.argsort(key, kind="stable")
    is_noise = srt >= ion_pix.size
    return _ChunkPixels(pix[srt], np.flatnonzero(~is_noise)), mzv[srt].astype(mzd), inten[srt]


def _write_processed(
    ibd: BinaryIO, pos: int, pix: np.ndarray, mzv: np.ndarray, inten: np.ndarray, nc: int, layout: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write one chunk's arrays at `pos`; return each spectrum's offsets and length."""
    msz, isz = mzv.dtype.itemsize, inten.dtype.itemsize
    ln = np.bincount(pix, minlength=nc).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(ln)[:-1]])
    if layout == "blocked":
        # all m/z arrays of the chunk, then all its intensity arrays
        mo = pos + start * msz
        io = pos + mzv.nbytes + start * isz
        mzv.tofile(ibd)
        inten.tofile(ibd)
        return mo, io, ln
    # per spectrum: m/z array then intensity array, via one byte scatter
    mo = pos + start * (msz + isz)
    io = mo + ln * msz
    out = np.empty(mzv.nbytes + inten.nbytes, dtype=np.uint8)
    rel = np.arange(pix.size) - start[pix]
    mpos = (mo - pos)[pix] + rel * msz
    ipos = (io - pos)[pix] + rel * isz
    out[mpos[:, None] + np.arange(msz)] = mzv.view(np.uint8).reshape(-1, msz)
    out[ipos[:, None] + np.arange(isz)] = inten.view(np.uint8).reshape(-1, isz)
    out.tofile(ibd)
    return mo, io, ln


def _spectra_xml(
    c0: int,
    xs: np.ndarray,
    ys: np.ndarray,
    mo: np.ndarray,
    io: np.ndarray,
    ln: np.ndarray,
    dtypes: tuple[np.dtype, np.dtype],
) -> str:
    msz, isz = dtypes[0].itemsize, dtypes[1].itemsize
    return "".join(
        _SPECTRUM.format(
            i1=c0 + r + 1,
            i0=c0 + r,
            x=xs[c0 + r] + 1,
            y=ys[c0 + r] + 1,
            mo=mo[r],
            io=io[r],
            n=ln[r],
            me=ln[r] * msz,
            ie=ln[r] * isz,
        )
        for r in range(len(ln))
    )


def _write_continuous(
    ibd: BinaryIO,
    pos: int,
    a: np.ndarray,
    axis: tuple[int, int, np.ndarray],
    rng: np.random.Generator,
    bad_left: list[int],
    bad: list[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write one chunk's intensity arrays on the shared axis (noise plus the ions' values)."""
    axis_off, npts, ion_cols = axis
    nc = a.shape[0]
    block = (rng.exponential(1.0, (nc, npts)) * 20.0).astype(a.dtype)
    block[:, ion_cols] = a
    if any(bad_left):
        bad[0], bad[1] = _plant_bad(block, ion_cols, bad_left, rng, *bad)
    block.tofile(ibd)
    io = pos + np.arange(nc, dtype=np.int64) * npts * a.dtype.itemsize
    return np.full(nc, axis_off, np.int64), io, np.full(nc, npts, np.int64)


def _ions(
    tissue: np.ndarray, n_on: int, n_off: int, mz_range: tuple[float, float], rng: np.random.Generator
) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """m/z, label, kind and spatial pattern of each ion, on and off ions interleaved along m/z."""
    height, width = tissue.shape
    pats, kinds = _patterns(height, width, tissue, n_on, n_off, rng)
    n_ions = n_on + n_off
    ion_mz = _ion_mzs(n_ions, mz_range[0] * 1.05, mz_range[1] * 0.95, rng)
    order = rng.permutation(n_ions)
    labels = ["on" if order[i] < n_on else "off" for i in range(n_ions)]
    return ion_mz, labels, [kinds[order[i]] for i in range(n_ions)], pats[order]


def write_synthetic_imzml(
    path_stem: str | os.PathLike[str],
    height: int,
    width: int,
    n_on: int = 12,
    n_off: int = 12,
    mode: str = "processed",
    mz_dtype: type | np.dtype = np.float64,
    int_dtype: type | np.dtype = np.float32,
    peaks_per_spectrum_noise: int = 100,
    non_rectangular: bool = False,
    seed: int = 0,
    mz_range: tuple[float, float] = (150.0, 1000.0),
    n_bad_intensities: int = 0,
    pixel_um: float = 20.0,
    layout: str = "interleaved",
) -> SyntheticTruth:
    """Write `<path_stem>.imzML` and `<path_stem>.ibd`; return what they should contain.

    mode "processed": each spectrum has its own centroided m/z array (ions present above a
    small threshold plus ~`peaks_per_spectrum_noise` noise peaks). mode "continuous": one
    shared m/z axis of `peaks_per_spectrum_noise` grid points plus the ion m/z values.
    `n_bad_intensities` NaN and negative values are planted in noise peaks (half each) to
    exercise the reader's clean-up. layout "interleaved" writes m/z then intensities for
    each spectrum (as converters do); "blocked" writes the m/z arrays of 4,096 spectra, then
    their intensity arrays (processed mode only).
    """
    if mode not in ("processed", "continuous"):
        raise ValueError("mode must be 'processed' or 'continuous'")
    rng = np.random.default_rng(seed)
    mzd, intd = np.dtype(mz_dtype), np.dtype(int_dtype)
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    imzml_path, ibd_path = stem.with_suffix(".imzML"), stem.with_suffix(".ibd")

    tissue = _tissue(height, width, rng)
    acquired = _acquired(height, width, rng, non_rectangular)
    ion_mz, labels, kinds, pats = _ions(tissue, n_on, n_off, mz_range, rng)
    n_ions = n_on + n_off
    levels = 10 ** rng.uniform(3, 5, n_ions)  # ion abundances span two decades
    ys, xs = np.nonzero(acquired)  # row-major acquisition order
    n_pix = ys.size
    # exact per-pixel ion intensities, stored with the file's precision
    amp = (pats[:, ys, xs] * levels[:, None] * rng.uniform(0.9, 1.1, (n_ions, n_pix))).T.astype(intd)
    if mode == "processed":
        amp[amp < levels.astype(intd) * 0.02] = 0  # weak peaks are not centroided

    uid = uuidlib.uuid4()
    header = _header(mode, uid, mzd, intd, width=width, height=height, n_spectra=n_pix, pixel_um=pixel_um)
    bad_left = [n_bad_intensities - n_bad_intensities // 2, n_bad_intensities // 2]
    bad = [0, 0]  # NaN and negative values planted so far
    with open(ibd_path, "wb") as ibd, open(imzml_path, "w", encoding="latin-1") as xml:
        ibd.write(uid.bytes)
        xml.write(header)
        pos = 16
        if mode == "continuous":
            shared_axis, ion_cols = _continuous_axis(ion_mz, mz_range, peaks_per_spectrum_noise, mzd)
            shared_axis.tofile(ibd)
            axis_off, npts = pos, shared_axis.size
            pos += shared_axis.nbytes
        for c0 in range(0, n_pix, _PIXELS_PER_CHUNK):
            c1 = min(n_pix, c0 + _PIXELS_PER_CHUNK)
            nc = c1 - c0
            a = amp[c0:c1]
            if mode == "continuous":
                mo, io, ln = _write_continuous(ibd, pos, a, (axis_off, npts, ion_cols), rng, bad_left, bad)
                pos += nc * npts * intd.itemsize
            else:
                pix, mzv, inten = _processed_peaks(
                    a, ion_mz, mz_range, peaks_per_spectrum_noise, (mzd, intd), rng
                )
                if any(bad_left):
                    bad[0], bad[1] = _plant_bad(inten, pix.ion_peaks, bad_left, rng, *bad)
                mo, io, ln = _write_processed(ibd, pos, pix.pixels, mzv, inten, nc, layout)
                pos += mzv.nbytes + inten.nbytes
            xml.write(_spectra_xml(c0, xs, ys, mo, io, ln, (mzd, intd)))
        xml.write(_FOOTER)
    n_nan, n_neg = bad

    images = np.zeros((n_ions, height, width), dtype=np.float32)
    images[:, ys, xs] = amp.T.astype(np.float32)
    return SyntheticTruth(
        ions=[(float(m), lab) for m, lab in zip(ion_mz, labels, strict=True)],
        tissue_mask=tissue,
        acquired_mask=acquired,
        images=images,
        kinds=kinds,
        imzml_path=str(imzml_path),
        ibd_path=str(ibd_path),
        n_nan=n_nan,
        n_negative=n_neg,
    )


def _plant_bad(
    values: np.ndarray,
    protected: np.ndarray,
    left: list[int],
    rng: np.random.Generator,
    n_nan: int,
    n_neg: int,
) -> tuple[int, int]:
    """Overwrite a few noise intensities with NaN / negative numbers, in place."""
    flat = values.reshape(-1) if values.ndim == 1 else values
    if values.ndim == 2:
        cols = np.setdiff1d(np.arange(values.shape[1]), protected)
        r = rng.integers(0, values.shape[0], left[0] + left[1])
        c = cols[rng.integers(0, cols.size, left[0] + left[1])]
        cells = np.unique(r * values.shape[1] + c)
        target = values.reshape(-1)
    else:
        free = np.setdiff1d(np.arange(flat.size), protected)
        cells = np.unique(rng.choice(free, min(free.size, left[0] + left[1]), replace=False))
        target = flat
    k_nan = min(left[0], cells.size)
    target[cells[:k_nan]] = np.nan
    target[cells[k_nan:]] = -target.dtype.type(5.0)
    n_nan += k_nan
    n_neg += cells.size - k_nan
    left[0] -= k_nan
    left[1] = max(0, left[1] - (cells.size - k_nan))
    return n_nan, n_neg
