"""read_metadata against pyimzml on real files, and every refusal it must make."""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from pyimzml.ImzMLParser import ImzMLParser

from ionsieve_core.msi import MSIError, read_metadata
from ionsieve_core.msi.synthetic import SyntheticTruth, write_synthetic_imzml
from tests.msi.conftest import DATA, real_file_params


def _pyimzml(path: Path) -> ImzMLParser:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyimzml warns about odd cvParam names in real files
        return ImzMLParser(str(path))


@pytest.mark.parametrize("path", real_file_params())
@pytest.mark.parametrize("general", [False, True], ids=["byte-scan", "iterparse"])
def test_it_matches_pyimzml_metadata_on_real_files(path: Path, general: bool) -> None:
    meta = read_metadata(path, _force_general=general)
    ref = _pyimzml(path)
    coords = np.array(ref.coordinates)
    assert meta.n_spectra == len(ref.coordinates)
    np.testing.assert_array_equal(meta.xs + 1, coords[:, 0])
    np.testing.assert_array_equal(meta.ys + 1, coords[:, 1])
    np.testing.assert_array_equal(meta.mz_offsets, ref.mzOffsets)
    np.testing.assert_array_equal(meta.int_offsets, ref.intensityOffsets)
    np.testing.assert_array_equal(meta.mz_lengths, ref.mzLengths)
    np.testing.assert_array_equal(meta.int_lengths, ref.intensityLengths)
    assert meta.mz_dtype == np.dtype(ref.mzPrecision)
    assert meta.int_dtype == np.dtype(ref.intensityPrecision)
    assert meta.shape == (coords[:, 1].max(), coords[:, 0].max())
    assert meta.xs.dtype == np.int32 and meta.mz_offsets.dtype == np.int64
    assert meta.mz_lengths.dtype == np.int32
    assert meta.centroid == (ref.spectrum_mode == "centroid")


def test_it_reads_storage_mode_and_instrument(tmp_path: Path) -> None:
    real = {p.name: p for p in DATA.glob("*/*.imzML")}
    if "Example_Continuous.imzML" not in real:
        pytest.skip("shared/data not present")
    cont = read_metadata(real["Example_Continuous.imzML"])
    proc = read_metadata(real["Example_Processed.imzML"])
    assert cont.continuous and cont.shared_mz
    assert not proc.continuous and not proc.shared_mz
    assert proc.instrument["instrument_model"] == "LTQ FT Ultra"
    assert proc.instrument["analyzer"] == "ion trap"
    assert proc.instrument["polarity"] == "negative"
    assert proc.instrument["pixel_size_x"] == "100.0 micrometer"
    tiny = read_metadata(real["Untreated_3_434_tiny.imzML"])
    assert tiny.centroid is True and tiny.uuid == "{F1DA2B10-5066-49DE-B9A3-243075247448}"


def test_it_reads_synthetic_files_like_pyimzml(processed: SyntheticTruth) -> None:
    meta = read_metadata(processed.imzml_path)
    ref = _pyimzml(Path(processed.imzml_path))
    np.testing.assert_array_equal(meta.mz_offsets, ref.mzOffsets)
    np.testing.assert_array_equal(meta.int_lengths, ref.intensityLengths)
    assert meta.instrument["instrument_model"] == "IonSieve synthetic Orbitrap"
    assert meta.instrument["polarity"] == "positive"
    general = read_metadata(processed.imzml_path, _force_general=True)
    np.testing.assert_array_equal(general.int_offsets, meta.int_offsets)


def test_it_is_much_faster_than_pyimzml(tmp_path: Path) -> None:
    truth = write_synthetic_imzml(tmp_path / "speed", 100, 100, n_on=2, n_off=2, peaks_per_spectrum_noise=5)
    t0 = time.perf_counter()
    _pyimzml(Path(truth.imzml_path))
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    meta = read_metadata(truth.imzml_path)
    t_ours = time.perf_counter() - t0
    assert meta.n_spectra == 10_000
    assert t_ours * 3 < t_ref, (t_ours, t_ref)


# ---- refusals -------------------------------------------------------------------------


def _copy(truth: SyntheticTruth, dest: Path, name: str = "copy") -> tuple[Path, Path]:
    imzml, ibd = dest / f"{name}.imzML", dest / f"{name}.ibd"
    shutil.copy(truth.imzml_path, imzml)
    shutil.copy(truth.ibd_path, ibd)
    return imzml, ibd


def _msg(exc: pytest.ExceptionInfo[MSIError]) -> str:
    return str(exc.value)


def test_it_refuses_a_truncated_ibd(processed: SyntheticTruth, tmp_path: Path) -> None:
    imzml, ibd = _copy(processed, tmp_path)
    meta = read_metadata(imzml)
    ends = np.maximum(meta.mz_offsets + meta.mz_lengths * 8, meta.int_offsets + meta.int_lengths * 4)
    keep = int(np.sort(ends)[len(ends) // 2])  # cut mid-way through the data
    with open(ibd, "r+b") as f:
        f.truncate(keep - 1)
    first_cut = int(np.argmax(ends > keep - 1)) + 1
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert _msg(exc) == (f"the .ibd file is truncated at spectrum {first_cut:,} of {meta.n_spectra:,}")


def test_it_refuses_an_ibd_from_another_file(processed: SyntheticTruth, continuous: SyntheticTruth) -> None:
    with pytest.raises(MSIError) as exc:
        read_metadata(processed.imzml_path, ibd_path=continuous.ibd_path)
    assert "does not belong to this .imzML: UUIDs differ" in _msg(exc)


def test_it_refuses_a_file_that_is_not_xml(tmp_path: Path) -> None:
    bad = tmp_path / "photo.imzML"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(MSIError) as exc:
        read_metadata(bad)
    assert _msg(exc) == "this file is not XML"


def test_it_refuses_xml_that_is_not_imzml(tmp_path: Path) -> None:
    bad = tmp_path / "page.imzML"
    bad.write_text('<?xml version="1.0"?>\n<html><body><p>hello</p></body></html>\n')
    with pytest.raises(MSIError) as exc:
        read_metadata(bad)
    assert "this XML file is not imzML" in _msg(exc)


def test_it_refuses_zero_spectra(processed: SyntheticTruth, tmp_path: Path) -> None:
    imzml, _ = _copy(processed, tmp_path)
    text = imzml.read_text(encoding="latin-1")
    head, _, rest = text.partition("<spectrumList")
    tail = rest[rest.index("</spectrumList>") :]
    imzml.write_text(
        head + '<spectrumList count="0" defaultDataProcessingRef="synthetic">\n' + tail, encoding="latin-1"
    )
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert _msg(exc) == "the .imzML file lists no spectra"


def test_it_refuses_absurd_dimensions(processed: SyntheticTruth, tmp_path: Path) -> None:
    imzml, _ = _copy(processed, tmp_path)
    text = imzml.read_text(encoding="latin-1")
    text = text.replace('name="position x" value="1"/>', 'name="position x" value="1000000"/>', 1).replace(
        'name="position y" value="1"/>', 'name="position y" value="1000000"/>', 1
    )
    imzml.write_text(text, encoding="latin-1")
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert _msg(exc) == (
        "the image grid 1,000,000 x 1,000,000 pixels is too large (limit: 50,000,000 pixels)"
    )


def test_it_refuses_entity_expansion(tmp_path: Path) -> None:
    lol = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    ]
    doc = (
        '<?xml version="1.0"?>\n<!DOCTYPE mzML [\n' + "\n".join(lol) + "\n]>\n"
        '<mzML xmlns="http://psi.hupo.org/ms/mzml"><fileDescription>&lol9;'
        "</fileDescription></mzML>\n"
    )
    bomb = tmp_path / "laughs.imzML"
    bomb.write_text(doc)
    (tmp_path / "laughs.ibd").write_bytes(b"\0" * 16)
    t0 = time.perf_counter()
    with pytest.raises(MSIError) as exc:
        read_metadata(bomb)
    assert time.perf_counter() - t0 < 1.0
    assert _msg(exc) == ("the file contains XML entity declarations, which are refused for safety")


def test_it_refuses_a_missing_ibd(processed: SyntheticTruth, tmp_path: Path) -> None:
    imzml = tmp_path / "lonely.imzML"
    shutil.copy(processed.imzml_path, imzml)
    with pytest.raises(MSIError) as exc:
        read_metadata(imzml)
    assert _msg(exc) == "no .ibd file was found next to lonely.imzML"
