from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pyimzml.ImzMLParser import ImzMLParser

from tests.datasets.helpers import REAL_FILES, synthetic, write_mz_list
from webapp.datasets.models import Dataset, IonImage

pytestmark = pytest.mark.django_db


def run_import(capsys, *args) -> int:
    call_command("import_imzml", *map(str, args))
    out = capsys.readouterr().out.strip().splitlines()
    return int(out[-1])


def independent(imzml, mzs, ppm=3.0):
    """Ion images the slow way: pyimzml, one spectrum at a time, sum inside +-ppm."""
    p = ImzMLParser(str(imzml))
    h = max(c[1] for c in p.coordinates)
    w = max(c[0] for c in p.coordinates)
    out = np.full((len(mzs), h, w), np.nan, dtype=np.float64)
    for i, (x, y, *_z) in enumerate(p.coordinates):
        mz, inten = p.getspectrum(i)
        inten = np.nan_to_num(np.clip(inten, 0, None))
        for k, m in enumerate(mzs):
            sel = (mz >= m * (1 - ppm * 1e-6)) & (mz <= m * (1 + ppm * 1e-6))
            out[k, y - 1, x - 1] = inten[sel].sum()
    return out


@pytest.mark.parametrize("key", sorted(REAL_FILES))
def test_it_imports_every_real_file_like_pyimzml(key, project, capsys, tmp_path):
    path = REAL_FILES[key]
    p = ImzMLParser(str(path))
    mz0, _ = p.getspectrum(0)
    mzs = [float(m) for m in mz0[:: max(1, len(mz0) // 6)][:6]]
    mz_list = write_mz_list(tmp_path / "list.csv", mzs)
    ds_id = run_import(capsys, path, "--project", project.slug, "--mz-list", mz_list)
    ds = Dataset.objects.get(pk=ds_id)
    assert ds.status == "ready" and ds.image_count == len(mzs)
    call_command("export_dataset", ds_id, tmp_path / "out")
    images = np.load(tmp_path / "out" / "ion_images.npy")
    assert images.dtype == np.float32
    expected = independent(path, mzs)
    assert images.shape == expected.shape
    np.testing.assert_allclose(images, expected, rtol=1e-4, equal_nan=True)
    with open(tmp_path / "out" / "ions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["mz"]) for r in rows] == pytest.approx(mzs)
    assert [r["index"] for r in rows] == [str(i) for i in range(len(mzs))]


def test_it_images_the_top_peaks_without_a_list(project, capsys):
    ds_id = run_import(
        capsys, REAL_FILES["masspix"], "--project", project.slug, "--top", "25", "--name", "Lipids"
    )
    ds = Dataset.objects.get(pk=ds_id)
    assert ds.name == "Lipids" and 1 <= ds.image_count <= 25
    assert ds.metadata["grid"] == [21, 21]
    lo, hi = ds.metadata["mz_range"]
    assert 690 < lo < hi < 910
    mzs = list(IonImage.objects.filter(dataset=ds).values_list("mz", flat=True))
    assert all(lo <= m <= hi for m in mzs)
    assert ds.thumb_path(0).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_it_stores_each_images_own_thumbnail_rendered_in_two_halves(project, capsys):
    # The two halves of the stack are rendered in two threads: every file holds its image's
    # thumbnail, as the renderer makes it alone.
    from ionsieve_core.imaging.thumbnails import to_thumbnail_png

    ds_id = run_import(capsys, REAL_FILES["masspix"], "--project", project.slug, "--top", "25")
    ds = Dataset.objects.get(pk=ds_id)
    stack = np.load(ds.array_path)
    assert len(stack) == ds.image_count >= 3 and len(list(ds.thumbs_dir.iterdir())) == len(stack)
    for n, image in enumerate(stack):
        assert ds.thumb_path(n).read_bytes() == to_thumbnail_png(image), n


def test_it_keeps_nan_where_no_spectrum_was_acquired(project, capsys, tmp_path):
    truth = synthetic(tmp_path, non_rectangular=True, seed=3)
    mz_list = write_mz_list(tmp_path / "l.csv", [m for m, _ in truth.ions])
    ds_id = run_import(capsys, truth.imzml_path, "--project", project.slug, "--mz-list", mz_list)
    call_command("export_dataset", ds_id, tmp_path / "o")
    images = np.load(tmp_path / "o" / "ion_images.npy")
    assert np.isnan(images[:, ~truth.acquired_mask]).all()
    np.testing.assert_allclose(
        images[:, truth.acquired_mask], truth.images[:, truth.acquired_mask], rtol=1e-5
    )


def test_it_normalises_by_tic(project, capsys, tmp_path):
    truth = synthetic(tmp_path, seed=4)
    mz_list = write_mz_list(tmp_path / "l.csv", [m for m, _ in truth.ions])
    ds_id = run_import(capsys, truth.imzml_path, "--project", project.slug, "--mz-list", mz_list, "--tic")
    call_command("export_dataset", ds_id, tmp_path / "o")
    images = np.load(tmp_path / "o" / "ion_images.npy")
    assert np.nanmax(images) <= 1.0 + 1e-6
    assert Dataset.objects.get(pk=ds_id).metadata["tic_normalised"] is True


def test_it_reads_a_metaspace_export_as_mz_list(project, capsys, tmp_path):
    truth = synthetic(tmp_path, seed=5)
    lines = [
        '"Generated at 3/1/2020 10:00. For help see https://metaspace2020.eu"',
        "group,datasetName,datasetId,formula,adduct,mz,msm,fdr",
    ]
    for n, (mz, _) in enumerate(truth.ions[:3]):
        lines.append(f"lab,ds,2020-01-01,C{n + 10}H20O2,+H,{mz!r},0.9,0.05")
    (tmp_path / "ms.csv").write_text("\n".join(lines) + "\n")
    ds_id = run_import(capsys, truth.imzml_path, "--project", project.slug, "--mz-list", tmp_path / "ms.csv")
    names = list(IonImage.objects.filter(dataset_id=ds_id).order_by("index").values_list("formula", "adduct"))
    assert names == [("C10H20O2", "+H"), ("C11H20O2", "+H"), ("C12H20O2", "+H")]


def test_it_reruns_idempotently_and_keeps_labels(project, capsys, tmp_path, user):
    from webapp.datasets import labels
    from webapp.ingestion import services

    truth = synthetic(tmp_path, seed=6)
    mz_list = write_mz_list(tmp_path / "l.csv", [m for m, _ in truth.ions])
    ds = Dataset.objects.get(
        pk=run_import(capsys, truth.imzml_path, "--project", project.slug, "--mz-list", mz_list)
    )
    im = ds.images.get(index=2)
    labels.set_labels(project, [im], user, "off")
    services.run_ingestion(ds)
    services.run_ingestion(ds)
    assert ds.images.count() == len(truth.ions)
    assert ds.images.get(index=2).consensus == "off"
    ds.refresh_from_db()
    assert ds.revision == 3
    assert sorted(p.name for p in ds.directory.iterdir() if p.name.startswith(".")) == []


# ---- bad input: a one-line message, non-zero exit, nothing left behind
def bad(capsys, *args) -> str:
    before = Dataset.objects.count()
    with pytest.raises(CommandError) as exc:
        call_command("import_imzml", *map(str, args))
    assert Dataset.objects.count() == before
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_it_refuses_a_missing_ibd(project, capsys, tmp_path):
    truth = synthetic(tmp_path)
    (tmp_path / "gen.ibd").unlink()
    assert ".ibd" in bad(capsys, truth.imzml_path, "--project", project.slug)


def test_it_refuses_a_mismatched_pair(project, capsys, tmp_path):
    a = synthetic(tmp_path, "a", seed=1)
    synthetic(tmp_path, "b", seed=2)
    shutil.copyfile(tmp_path / "b.ibd", tmp_path / "a.ibd")
    assert "UUIDs differ" in bad(capsys, a.imzml_path, "--project", project.slug)


def test_it_refuses_a_truncated_ibd(project, capsys, tmp_path):
    truth = synthetic(tmp_path)
    ibd = tmp_path / "gen.ibd"
    data = ibd.read_bytes()
    ibd.write_bytes(data[: len(data) // 2])
    assert "truncated" in bad(capsys, truth.imzml_path, "--project", project.slug)


def test_it_refuses_files_that_are_not_imzml(project, capsys, tmp_path):
    (tmp_path / "x.imzML").write_bytes(b"\x00\x01binary garbage")
    (tmp_path / "x.ibd").write_bytes(b"\x00" * 32)
    assert "not XML" in bad(capsys, tmp_path / "x.imzML", "--project", project.slug)
    (tmp_path / "y.imzML").write_text("<?xml version='1.0'?><html><body/></html>")
    (tmp_path / "y.ibd").write_bytes(b"\x00" * 32)
    assert "not imzML" in bad(capsys, tmp_path / "y.imzML", "--project", project.slug)


def test_it_refuses_an_mz_list_out_of_range(project, capsys, tmp_path):
    truth = synthetic(tmp_path)
    mz_list = write_mz_list(tmp_path / "l.csv", [5000.0, 6000.0])
    assert "range" in bad(capsys, truth.imzml_path, "--project", project.slug, "--mz-list", mz_list)
    (tmp_path / "empty.csv").write_text("name,comment\nfoo,bar\n")
    assert "no usable rows" in bad(
        capsys, truth.imzml_path, "--project", project.slug, "--mz-list", tmp_path / "empty.csv"
    )


def test_it_refuses_files_above_the_size_limit(project, capsys, tmp_path, settings):
    truth = synthetic(tmp_path)
    settings.IONSIEVE_MAX_UPLOAD_BYTES = 1000
    assert "limit" in bad(capsys, truth.imzml_path, "--project", project.slug)


def test_it_refuses_absurd_dimensions(project, capsys, tmp_path, settings):
    truth = synthetic(tmp_path)
    settings.IONSIEVE_MAX_PIXELS = 50
    assert "too large" in bad(capsys, truth.imzml_path, "--project", project.slug)


def test_it_refuses_an_unknown_project(capsys, tmp_path, db):
    truth = synthetic(tmp_path)
    assert "No project" in bad(capsys, truth.imzml_path, "--project", "nope")
