"""Every kind of imzML pyimzml's writer makes, read and imaged like pyimzml's getionimage.

Also the files neither reader can read, and .ibd files that do not match their .imzML.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ionsieve_core.msi import MSIError, extract, read_metadata
from tests.msi.variants import Variant, reference_images, reference_tic, write_variant

CASES = {
    # name: write_variant options
    "processed-f64-f32-plain": dict(),
    "processed-zlib-intensities": dict(int_zlib=True),
    "processed-zlib-both": dict(mz_zlib=True, int_zlib=True, mz_dtype=np.float32),
    "processed-zlib-mz-only": dict(mz_zlib=True),
    "processed-int32": dict(int_dtype=np.int32),
    "processed-int64-zlib": dict(int_dtype=np.int64, int_zlib=True),
    "processed-int16": dict(int_dtype=np.int16),
    "processed-int8-zlib": dict(int_dtype=np.int8, int_zlib=True, mz_zlib=True),
    "processed-f16": dict(int_dtype=np.float16),
    "processed-f64-f64-profile": dict(int_dtype=np.float64, spec_type="profile"),
    "processed-in-order-rectangular": dict(shuffle=False, holes=False, int_zlib=True),
    "continuous-plain": dict(mode="continuous"),
    "continuous-zlib-both": dict(mode="continuous", mz_zlib=True, int_zlib=True),
    "continuous-int32-zlib-profile": dict(
        mode="continuous", int_dtype=np.int32, int_zlib=True, spec_type="profile"
    ),
    "continuous-f16-in-order": dict(mode="continuous", int_dtype=np.float16, shuffle=False),
    # the writer's default mode: each distinct m/z array written once, spectra point at it
    "auto-zlib": dict(mode="auto", mz_zlib=True, int_zlib=True),
    "auto-3-shared-axes-zlib": dict(mode="auto", axes=3, mz_zlib=True, int_zlib=True),
    "auto-3-shared-axes": dict(mode="auto", axes=3),
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Variant]:
    root = tmp_path_factory.mktemp("variants")
    return {name: write_variant(root / name, seed=i, **opts) for i, (name, opts) in enumerate(CASES.items())}


@pytest.mark.parametrize("name", list(CASES))
def test_it_images_every_variant_like_getionimage(variants: dict[str, Variant], name: str) -> None:
    v = variants[name]
    opts = CASES[name]
    meta = read_metadata(v.imzml)
    assert meta.int_dtype == np.dtype(opts.get("int_dtype", np.float32))
    assert meta.mz_compression == ("zlib" if opts.get("mz_zlib") else None)
    assert meta.int_compression == ("zlib" if opts.get("int_zlib") else None)
    assert meta.continuous == (opts.get("mode") == "continuous")
    if opts.get("axes"):
        assert np.unique(meta.mz_offsets).size == opts["axes"]
    assert meta.centroid == (opts.get("spec_type", "centroid") == "centroid")
    mzs = v.ions[::-1].copy()  # any order in, same order out
    ex = extract(meta, mzs, ppm=3.0)
    ref = reference_images(v, mzs)
    assert ex.images.shape == ref.shape == (mzs.size, *v.shape)
    np.testing.assert_array_equal(ex.acquired_mask, v.acquired)
    np.testing.assert_allclose(ex.images, ref, rtol=1e-6, equal_nan=True)
    assert np.nanmax(ex.images) > 0
    np.testing.assert_allclose(ex.tic, reference_tic(v), rtol=1e-6, equal_nan=True)


def test_it_reads_compressed_files_with_both_parsers(variants: dict[str, Variant]) -> None:
    v = variants["processed-zlib-both"]
    fast = read_metadata(v.imzml)
    general = read_metadata(v.imzml, _force_general=True)
    for field in (
        "xs",
        "ys",
        "mz_offsets",
        "int_offsets",
        "mz_encoded_lengths",
        "int_encoded_lengths",
        "int_lengths",
    ):
        np.testing.assert_array_equal(getattr(fast, field), getattr(general, field))
    assert general.mz_compression == general.int_compression == "zlib"


def test_it_reads_compression_declared_on_each_array(variants: dict[str, Variant], tmp_path: Path) -> None:
    # Some converters state compression inside every <binaryDataArray>, not in the group.
    v = variants["processed-zlib-intensities"]
    text = v.imzml.read_text(encoding="latin-1")
    line = '<cvParam cvRef="MS" accession="MS:1000574" name="zlib compression" value=""/>'
    assert text.count(line) == 1
    text = text.replace(line, "").replace(
        '<referenceableParamGroupRef ref="intensityArray"/>',
        '<referenceableParamGroupRef ref="intensityArray"/>' + line,
    )
    imzml = tmp_path / "inline.imzML"
    imzml.write_text(text, encoding="latin-1")
    shutil.copy(v.imzml.with_suffix(".ibd"), tmp_path / "inline.ibd")
    meta = read_metadata(imzml)
    assert meta.int_compression == "zlib" and meta.mz_compression is None
    ex = extract(meta, v.ions)
    np.testing.assert_allclose(ex.images, reference_images(v, v.ions), rtol=1e-6, equal_nan=True)


def _rewrite(v: Variant, tmp_path: Path, old: str, new: str) -> Path:
    text = v.imzml.read_text(encoding="latin-1")
    assert text.count(old) == 1
    imzml = tmp_path / "odd.imzML"
    imzml.write_text(text.replace(old, new), encoding="latin-1")
    shutil.copy(v.imzml.with_suffix(".ibd"), tmp_path / "odd.ibd")
    return imzml


def test_it_falls_back_to_pyimzml_for_a_number_type_under_an_unknown_accession(
    variants: dict[str, Variant], tmp_path: Path
) -> None:
    # Our scans go by accession; pyimzml also matches an unknown accession's name.
    v = variants["processed-f64-f32-plain"]
    imzml = _rewrite(
        v,
        tmp_path,
        'accession="MS:1000521" name="32-bit float"',
        'accession="MS:9999999" name="32-bit float"',
    )
    meta = read_metadata(imzml)
    assert meta.int_dtype == np.dtype("<f4")
    ex = extract(meta, v.ions)
    np.testing.assert_allclose(ex.images, reference_images(v, v.ions), rtol=1e-6, equal_nan=True)


def test_it_falls_back_to_pyimzml_when_arrays_are_named_under_an_unknown_accession(
    variants: dict[str, Variant], tmp_path: Path
) -> None:
    # Our parsers cannot tell which array is which; pyimzml's finds "m/z array" by name.
    v = variants["processed-int32"]
    imzml = _rewrite(
        v, tmp_path, 'accession="MS:1000514" name="m/z array"', 'accession="MS:9999998" name="m/z array"'
    )
    meta = read_metadata(imzml)
    assert (meta.mz_dtype, meta.int_dtype) == (np.dtype("<f8"), np.dtype("<i4"))
    ex = extract(meta, v.ions)
    np.testing.assert_allclose(ex.images, reference_images(v, v.ions), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("general", [False, True], ids=["byte-scan", "iterparse"])
def test_it_reads_compressed_arrays_without_encoded_lengths(
    variants: dict[str, Variant], tmp_path: Path, general: bool
) -> None:
    # IMS:1000104 is required by imzML, but a reader must not need it to find zlib's end
    v = variants["processed-zlib-both"]
    text = re.sub(
        r'\s*<cvParam [^>]*accession="IMS:1000104"[^>]*/>', "", v.imzml.read_text(encoding="latin-1")
    )
    imzml = tmp_path / "noenc.imzML"
    imzml.write_text(text, encoding="latin-1")
    shutil.copy(v.imzml.with_suffix(".ibd"), tmp_path / "noenc.ibd")
    meta = read_metadata(imzml, _force_general=general)
    assert (meta.int_encoded_lengths == -1).all()
    ex = extract(meta, v.ions)
    np.testing.assert_allclose(ex.images, reference_images(v, v.ions), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("general", [False, True], ids=["byte-scan", "iterparse"])
def test_it_believes_the_name_where_exporters_are_known_to_swap_accessions(
    variants: dict[str, Variant], tmp_path: Path, general: bool
) -> None:
    # "32-bit float" under the 64-bit float accession: a known converter bug (pyimzML #21)
    v = variants["processed-f64-f32-plain"]
    imzml = _rewrite(
        v,
        tmp_path,
        'accession="MS:1000521" name="32-bit float"',
        'accession="MS:1000523" name="32-bit float"',
    )
    meta = read_metadata(imzml, _force_general=general)
    assert (meta.mz_dtype, meta.int_dtype) == (np.dtype("<f8"), np.dtype("<f4"))


def test_it_reads_the_same_index_through_pyimzml(variants: dict[str, Variant]) -> None:
    v = variants["processed-int32"]
    ours, theirs = read_metadata(v.imzml), read_metadata(v.imzml, _force_pyimzml=True)
    for field in ("xs", "ys", "mz_offsets", "int_offsets", "mz_lengths", "int_lengths"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field))
    assert (ours.mz_dtype, ours.int_dtype) == (theirs.mz_dtype, theirs.int_dtype)


# ---- what neither reader can read, and .ibd files that do not match ------------------------


def _copy(v: Variant, dest: Path, name: str = "copy") -> tuple[Path, Path]:
    imzml, ibd = dest / f"{name}.imzML", dest / f"{name}.ibd"
    shutil.copy(v.imzml, imzml)
    shutil.copy(v.imzml.with_suffix(".ibd"), ibd)
    return imzml, ibd


def test_it_refuses_numpress_naming_it(variants: dict[str, Variant], tmp_path: Path) -> None:
    imzml, _ = _copy(variants["processed-zlib-intensities"], tmp_path)
    text = imzml.read_text(encoding="latin-1").replace(
        'accession="MS:1000574" name="zlib compression"',
        'accession="MS:1002312" name="MS-Numpress linear prediction compression"',
    )
    imzml.write_text(text, encoding="latin-1")
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert str(exc.value) == (
        "the intensities are stored with MS-Numpress linear prediction compression, which "
        "neither IonSieve nor pyimzml can read; export the dataset again without compression "
        "or with zlib compression"
    )


def test_it_refuses_a_compressed_ibd_cut_short(variants: dict[str, Variant], tmp_path: Path) -> None:
    imzml, ibd = _copy(variants["processed-zlib-both"], tmp_path)
    n = read_metadata(imzml).n_spectra
    ibd.write_bytes(ibd.read_bytes()[:-1000])
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert str(exc.value).startswith("the .ibd file is truncated at spectrum ")
    assert str(exc.value).endswith(f" of {n:,}")


@pytest.mark.parametrize(
    "name,kind",
    [
        ("processed-zlib-intensities", "int"),
        ("continuous-zlib-both", "int"),
        ("processed-zlib-both", "mz"),
        ("continuous-zlib-both", "mz"),
    ],
)
def test_it_refuses_damaged_compressed_data(
    variants: dict[str, Variant], tmp_path: Path, name: str, kind: str
) -> None:
    imzml, ibd = _copy(variants[name], tmp_path)
    meta = read_metadata(imzml)
    data = bytearray(ibd.read_bytes())
    i = meta.n_spectra // 2 if not meta.continuous or kind == "int" else 0
    at = int((meta.int_offsets if kind == "int" else meta.mz_offsets)[i])
    data[at + 2 : at + 12] = bytes(10)  # zeros in the middle of one deflate stream
    ibd.write_bytes(bytes(data))
    with pytest.raises(MSIError) as exc:
        extract(read_metadata(imzml), variants[name].ions)
    what = "intensities" if kind == "int" else "m/z values"
    assert str(exc.value) == (
        f"the .ibd file does not match its .imzML: the compressed {what} of spectrum "
        f"{i + 1:,} cannot be decoded (damaged or from another file)"
    )


def test_it_refuses_an_ibd_with_the_right_uuid_but_other_data(tmp_path: Path) -> None:
    # Same UUID (a copied header), other spectra: offsets land on the wrong numbers.
    a = write_variant(tmp_path / "a", seed=1, holes=False)
    b = write_variant(tmp_path / "b", seed=2, holes=False, height=12)
    ibd_a = a.imzml.with_suffix(".ibd")
    data_b = b.imzml.with_suffix(".ibd").read_bytes()
    ibd_a.write_bytes(ibd_a.read_bytes()[:16] + data_b[16:])
    meta = read_metadata(a.imzml)  # sizes alone may fit
    with pytest.raises(MSIError) as exc:
        extract(meta, a.ions)
    msg = str(exc.value)
    assert msg.startswith("the .ibd file does not match its .imzML: spectrum ")
    assert msg.endswith("which no instrument measures, so the offsets point at the wrong data")


def test_it_refuses_offsets_that_make_arrays_overlap(variants: dict[str, Variant], tmp_path: Path) -> None:
    imzml, _ = _copy(variants["processed-f64-f32-plain"], tmp_path)
    meta = read_metadata(imzml)
    text = imzml.read_text(encoding="latin-1")
    # spectrum 1's intensities said to start 8 bytes into its own m/z array
    old = f'name="external offset" value="{int(meta.int_offsets[0])}"'
    assert text.count(old) == 1
    text = text.replace(old, f'name="external offset" value="{int(meta.mz_offsets[0]) + 8}"')
    imzml.write_text(text, encoding="latin-1")
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert str(exc.value) == (
        "the .ibd file does not match its .imzML: the m/z and intensity arrays of spectrum 1 overlap"
    )


def test_it_refuses_mixed_compression_settings(variants: dict[str, Variant], tmp_path: Path) -> None:
    imzml, _ = _copy(variants["processed-zlib-intensities"], tmp_path)
    text = imzml.read_text(encoding="latin-1")
    plain = '<cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>'
    text = text.replace(
        '<referenceableParamGroupRef ref="intensityArray"/>',
        '<referenceableParamGroupRef ref="intensityArray"/>' + plain,
        1,
    )
    imzml.write_text(text, encoding="latin-1")
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert str(exc.value) == (
        "the .imzML file declares both compressed and uncompressed "
        "intensities; export the dataset again with one setting"
    )


# ---- compressed processed files: the m/z range comes from a sample --------------------------


def _write_outliers(stem: Path, zlib: bool) -> Path:
    """60 spectra with peaks in 200-900, except spectrum 38 (one at m/z 120) and 42 (one at
    m/z 1,500): neither is among the 4 spectra a _RANGE_SAMPLE of 4 decodes (1, 21, 40, 60)."""
    from pyimzml.compression import NoCompression, ZlibCompression
    from pyimzml.ImzMLWriter import ImzMLWriter

    rng = np.random.default_rng(7)
    c = ZlibCompression() if zlib else NoCompression()
    with ImzMLWriter(str(stem), mode="processed", mz_compression=c, intensity_compression=c) as w:
        for i in range(60):
            mz = np.sort(rng.uniform(200, 900, 30))
            inten = rng.integers(1, 1000, 30).astype(np.float32)
            if i == 37:
                mz, inten = np.r_[120.0, mz], np.r_[5000.0, inten]
            if i == 41:
                mz, inten = np.r_[mz, 1500.0], np.r_[inten, 7000.0]
            w.addSpectrum(mz, inten, (i % 10 + 1, i // 10 + 1))
    return stem.with_suffix(".imzML")


@pytest.mark.parametrize("overflow_max", [2_000_000, 1], ids=["kept", "merged"])
def test_it_keeps_peaks_beyond_the_sampled_range(tmp_path: Path, monkeypatch, overflow_max: int) -> None:
    extract_module = importlib.import_module("ionsieve_core.msi.extract")  # the package exports
    plain = read_metadata(_write_outliers(tmp_path / "plain", zlib=False))
    packed = read_metadata(_write_outliers(tmp_path / "packed", zlib=True))
    assert packed.mz_compression == "zlib"
    monkeypatch.setattr(extract_module, "_RANGE_SAMPLE", 4)
    monkeypatch.setattr(extract_module, "_OVERFLOW_MAX", overflow_max)
    mzs = np.array([120.0, 1500.0, 500.0])
    a, b = extract(plain, mzs), extract(packed, mzs)
    np.testing.assert_array_equal(a.images, b.images)
    assert b.images[0, 3, 7] == 5000 and b.images[1, 4, 1] == 7000
    mean_mz, mean_int = b.mean_spectrum
    for target, total in ((120.0, 5000.0), (1500.0, 7000.0)):
        at = int(np.argmin(np.abs(mean_mz - target)))
        assert mean_mz[at] == pytest.approx(target, rel=1e-7)
        assert mean_int[at] == pytest.approx(total / 60)
    # nothing lost or counted twice: the same total as the uncompressed file's spectrum
    assert mean_int.sum() == pytest.approx(a.mean_spectrum[1].sum(), rel=1e-12)
    assert mean_mz.min() == pytest.approx(120.0, rel=1e-6)
    assert mean_mz.max() == pytest.approx(1500.0, rel=1e-6)


def _write_with_z(stem: Path, zs: list[int]) -> Path:
    from pyimzml.ImzMLWriter import ImzMLWriter

    rng = np.random.default_rng(3)
    with ImzMLWriter(str(stem), mode="processed") as w:
        for i in range(40):
            mz = np.sort(np.r_[rng.uniform(150, 190, 2), 400.0, rng.uniform(200, 900, 10)])
            w.addSpectrum(
                mz,
                rng.integers(1, 100, mz.size).astype(np.float32),
                (i % 8 + 1, i // 8 % 5 + 1, zs[i % len(zs)]),
            )
    return stem.with_suffix(".imzML")


@pytest.mark.parametrize("how", ["byte-scan", "iterparse", "pyimzml"])
def test_it_refuses_a_3d_dataset_and_reads_a_single_z_section(tmp_path: Path, how: str) -> None:
    force = {"iterparse": {"_force_general": True}, "pyimzml": {"_force_pyimzml": True}}
    kw = force.get(how, {})
    with pytest.raises(MSIError) as exc:
        read_metadata(_write_with_z(tmp_path / "stack", [1, 2]), **kw)
    assert str(exc.value) == (
        "this is a 3-D dataset with 2 sections along z; IonSieve images "
        "one section at a time: export each section as its own imzML"
    )
    one = _write_with_z(tmp_path / "one", [1])
    meta = read_metadata(one, **kw)
    assert meta.shape == (5, 8) and meta.n_spectra == 40
    ex = extract(meta, np.array([400.0]))
    ref = reference_images(
        Variant(one, one, np.array([400.0]), np.ones((5, 8), bool), (5, 8)), np.array([400.0])
    )
    np.testing.assert_allclose(ex.images, ref, rtol=1e-6)
