"""import_imzml + export_dataset on every kind of imzML pyimzml's writer makes (compressed,
integer intensities, shuffled pixels, holes), against pyimzml's getionimage on an
uncompressed twin; damaged files leave nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ionsieve_core.msi import read_metadata
from tests.datasets.helpers import write_mz_list
from tests.msi.variants import reference_images, write_variant
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db


def run_import(capsys, *args) -> int:
    call_command("import_imzml", *map(str, args))
    return int(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "opts",
    [
        dict(mz_zlib=True, int_zlib=True),
        dict(int_dtype=np.int32, int_zlib=True, spec_type="profile"),
        dict(mode="continuous", int_dtype=np.int64, int_zlib=True),
        dict(mode="auto", mz_zlib=True, int_zlib=True, axes=3),
    ],
    ids=["processed-zlib", "processed-int32-zlib", "continuous-int64-zlib", "auto-zlib"],
)
def test_it_imports_compressed_and_integer_files_like_getionimage(project, capsys, tmp_path, opts):
    v = write_variant(tmp_path / "v", seed=5, **opts)
    mzs = [float(m) for m in v.ions]
    ds_id = run_import(
        capsys, v.imzml, "--project", project.slug, "--mz-list", write_mz_list(tmp_path / "l.csv", mzs)
    )
    ds = Dataset.objects.get(pk=ds_id)
    assert ds.status == "ready" and ds.image_count == len(mzs)
    assert ds.metadata["intensity_dtype"] == str(np.dtype(opts.get("int_dtype", np.float32)))
    call_command("export_dataset", ds_id, tmp_path / "out")
    images = np.load(tmp_path / "out" / "ion_images.npy")
    np.testing.assert_allclose(images, reference_images(v, np.array(mzs)), rtol=1e-6, equal_nan=True)
    assert ds.thumb_path(0).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_it_leaves_nothing_behind_for_damaged_compressed_data(project, capsys, tmp_path):
    v = write_variant(tmp_path / "v", seed=6, int_zlib=True)
    meta = read_metadata(v.imzml)
    ibd = v.imzml.with_suffix(".ibd")
    data = bytearray(ibd.read_bytes())
    at = int(meta.int_offsets[-1])
    data[at + 2 : at + 12] = bytes(10)
    ibd.write_bytes(bytes(data))
    before = Dataset.objects.count()
    with pytest.raises(CommandError) as exc:
        call_command("import_imzml", str(v.imzml), "--project", project.slug, "--top", "5")
    assert Dataset.objects.count() == before
    assert (
        f".ibd file does not match its .imzML: the compressed intensities of spectrum "
        f"{meta.n_spectra:,} cannot be decoded (damaged or from another file)" in str(exc.value)
    )
