from __future__ import annotations

import csv
import shutil
import zipfile

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from tests.factories import ProjectFactory
from tests.shared_data import SHARED_DATA
from webapp.datasets.models import Dataset, Label

pytestmark = pytest.mark.django_db

SHARED = SHARED_DATA
GS = SHARED / "ionimages" / "metaspace_examples"
YEAST = SHARED / "microscopy" / "deeploc_yeast"
YEAST_CLASSES = "ER,bud,bud_neck,cell_periphery,cytosol,mitochondria,nuclear_periphery,nucleus,punctate,vacuole,vacuole_membrane"


def run(capsys, *args) -> list[int]:
    call_command("import_images", *map(str, args))
    return [int(x) for x in capsys.readouterr().out.split()]


def test_it_imports_the_metaspace_gold_standard_layout(project, user, capsys):
    [ds_id] = run(capsys, GS, "--project", project.slug)
    ds = Dataset.objects.get(pk=ds_id)
    assert ds.kind == "images" and ds.status == "ready" and ds.image_count == 8
    got = dict(ds.images.values_list("name", "consensus"))
    expected = {p.stem: p.parent.name for p in GS.glob("*/*.png")}
    assert got == expected
    assert Label.objects.filter(image__dataset=ds, user=user).count() == 8
    assert ds.thumb_path(0).exists()


def test_it_imports_multichannel_microscopy(user, capsys):
    project = ProjectFactory(owner=user, task="multiclass", classes=YEAST_CLASSES)
    [ds_id] = run(capsys, YEAST, "--project", project.slug, "--layout", "channels", "--channels", "green,red")
    ds = Dataset.objects.get(pk=ds_id)
    assert ds.image_count == 36 and ds.channels == 2
    stack = np.load(ds.array_path)
    assert stack.shape == (36, 64, 64, 2)
    green = np.asarray(Image.open(YEAST / "images" / "cell00_green.png"), dtype=np.float32)
    im0 = ds.images.get(name="cell00")
    np.testing.assert_array_equal(stack[im0.index, :, :, 0], green)
    with open(YEAST / "labels.csv") as f:
        rows = list(csv.reader(f))
    assert ds.images.exclude(consensus__isnull=True).count() == len(rows) - 1


def test_it_imports_a_zip_and_a_flat_folder_without_labels(project, capsys, tmp_path):
    flat = tmp_path / "slide7"
    flat.mkdir()
    for p in GS.glob("*/*.png"):
        shutil.copy(p, flat / p.name)
    [ds_id] = run(capsys, flat, "--project", project.slug, "--layout", "flat")
    ds = Dataset.objects.get(pk=ds_id)
    assert (
        ds.name == "slide7" and ds.image_count == 8 and not ds.images.exclude(consensus__isnull=True).exists()
    )
    z = tmp_path / "gold.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in GS.glob("*/*.png"):
            zf.write(p, f"kidney/{p.parent.name}/{p.name}")
    [ds2] = run(capsys, z, "--project", project.slug)
    assert Dataset.objects.get(pk=ds2).name == "kidney"


def test_it_round_trips_through_export(project, capsys, tmp_path):
    [ds_id] = run(capsys, GS, "--project", project.slug)
    call_command("export_project", project.slug, str(tmp_path / "out.zip"))
    assert "8 images written" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "x")
    assert "GS.csv" in names and "predictions.csv" in names and "scales.csv" in names
    other = ProjectFactory(owner=project.memberships.get().user)
    [again] = run(capsys, tmp_path / "out.zip", "--project", other.slug)
    a = dict(Dataset.objects.get(pk=ds_id).images.values_list("name", "consensus"))
    b = dict(Dataset.objects.get(pk=again).images.values_list("name", "consensus"))
    assert a == b
    with open(tmp_path / "x" / "GS.csv") as f:
        gs = list(csv.DictReader(f))
    assert {r["type"] for r in gs} == {"on", "off"} and len(gs) == 8


def test_it_refuses_bad_collections_and_imports_nothing(project, capsys, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(GS, folder)
    (folder / "on" / "notes.txt").write_text("not an image")
    with pytest.raises(CommandError, match="notes.txt"):
        call_command("import_images", str(folder), "--project", project.slug)
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(next(GS.glob("on/*.png")), flat / "a.png")
    (flat / "labels.csv").write_text("file,label\na.png,sideways\nmissing.png,on\n")
    with pytest.raises(CommandError) as exc:
        call_command("import_images", str(flat), "--project", project.slug, "--layout", "flat")
    assert "sideways" in str(exc.value) and "missing" in str(exc.value)
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../evil.png", b"x")
    with pytest.raises(CommandError, match="outside|escape"):
        call_command("import_images", str(slip), "--project", project.slug)
    assert not Dataset.objects.exists()
