from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from ionsieve_core.imagesets.archive import safe_extract
from ionsieve_core.imagesets.errors import ImageSetError
from ionsieve_core.imagesets.images import read_image
from ionsieve_core.imagesets.layouts import detect_layout, plan_import
from tests.imagesets.helpers import (
    DEEPLOC,
    DEEPLOC_CLASSES,
    METASPACE,
    listing,
    png_bytes,
    png_header,
    write_png,
)


def problems_of(root, **kw) -> list[str]:
    with pytest.raises(ImageSetError) as err:
        plan_import(root, **kw)
    return err.value.problems


def test_it_plans_the_real_metaspace_gold_standard(tmp_path):
    assert detect_layout(METASPACE) == "gs"
    before = listing(METASPACE)
    plan = plan_import(METASPACE, classes=["off", "on"])
    assert listing(METASPACE) == before
    assert plan.layout == "gs" and [d.name for d in plan.datasets] == ["metaspace_examples"]
    items = {i.name: i for i in plan.datasets[0].items}
    assert len(items) == 8 and plan.classes_seen == ["off", "on"]
    assert items["intsco_on-1"].labels == ["on"] and items["service_test_off"].labels == ["off"]
    assert sum(i.labels == ["on"] for i in items.values()) == 4
    assert all(len(i.paths) == 1 and i.paths[0].is_file() for i in items.values())
    # images of one dataset differ in size (190-570 px): accepted
    assert len({read_image(i.paths[0]).shape for i in items.values()}) > 3


def test_it_plans_a_gold_standard_tree_of_several_datasets(tmp_path):
    for ds in ("ds1", "ds2"):
        shutil.copytree(METASPACE, tmp_path / "gs" / ds)
    plan = plan_import(tmp_path / "gs")
    assert plan.layout == "gs" and [d.name for d in plan.datasets] == ["ds1", "ds2"]
    assert [len(d.items) for d in plan.datasets] == [8, 8]


def test_it_plans_the_real_deeploc_channels_layout():
    assert detect_layout(DEEPLOC) == "channels"
    plan = plan_import(DEEPLOC, classes=DEEPLOC_CLASSES)
    assert plan.layout == "channels" and plan.channels == ["red", "green"]
    (ds,) = plan.datasets
    assert ds.name == "deeploc_yeast" and len(ds.items) == 36
    first = ds.items[0]
    assert first.name == "cell00" and [p.name for p in first.paths] == [
        "cell00_red.png",
        "cell00_green.png",
    ]
    assert first.labels == ["vacuole_membrane"]
    assert all(len(i.labels) == 1 and i.labels[0] in DEEPLOC_CLASSES for i in ds.items)
    assert set(plan.classes_seen) <= set(DEEPLOC_CLASSES) and len(plan.classes_seen) == 9
    plan = plan_import(DEEPLOC, channels=["green", "red"], classes=DEEPLOC_CLASSES)
    assert [p.name for p in plan.datasets[0].items[0].paths] == [
        "cell00_green.png",
        "cell00_red.png",
    ]


def test_it_plans_deeploc_from_a_zip(tmp_path):
    z = tmp_path / "yeast.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in DEEPLOC.rglob("*"):
            if p.is_file():
                zf.write(p, "deeploc_yeast/" + p.relative_to(DEEPLOC).as_posix())
    plan = plan_import(safe_extract(z, tmp_path / "x"), classes=DEEPLOC_CLASSES)
    assert plan.layout == "channels" and plan.datasets[0].name == "deeploc_yeast"
    assert len(plan.datasets[0].items) == 36


def test_it_plans_hpa_style_channels_with_class_indices(tmp_path):
    for i in ("a1", "b2"):
        for k, ch in enumerate(("blue", "green", "red", "yellow")):
            write_png(tmp_path / "hpa" / "train" / f"{i}_{ch}.png", seed=k)
    (tmp_path / "hpa" / "train.csv").write_text("Id,Target\na1,0 2\nb2,1\n")
    plan = plan_import(tmp_path / "hpa", classes=["nucleoplasm", "membrane", "nucleoli"])
    assert plan.channels == ["red", "green", "blue", "yellow"]
    assert [p.name for p in plan.datasets[0].items[0].paths] == [
        "a1_red.png",
        "a1_green.png",
        "a1_blue.png",
        "a1_yellow.png",
    ]
    assert plan.datasets[0].name == "hpa"  # `train/` is packaging: named after the root
    assert [i.labels for i in plan.datasets[0].items] == [["nucleoplasm", "nucleoli"], ["membrane"]]


def test_it_plans_a_flat_folder_with_a_labels_csv_in_any_spelling(tmp_path):
    root = tmp_path / "plate1"
    for n in ("a", "b", "c", "d"):
        write_png(root / f"{n}.png")
    (root / "README.md").write_text("about")
    (root / "LICENSE").write_text("CC-BY")
    (root / ".hidden").write_text("x")
    (root / "labels.csv").write_text("file,label\na.png,on\nb,off\nplate1/c.png,on off\n")
    assert detect_layout(root) == "flat"
    plan = plan_import(root)
    assert plan.layout == "flat" and [d.name for d in plan.datasets] == ["plate1"]
    assert [(i.name, i.labels) for i in plan.datasets[0].items] == [
        ("a", ["on"]),
        ("b", ["off"]),
        ("c", ["on", "off"]),
        ("d", []),
    ]
    assert any("1 image(s) have no row" in w for w in plan.warnings)


def test_it_makes_one_flat_dataset_per_subfolder(tmp_path):
    for ds in ("s1", "s2"):
        for n in ("a", "b"):
            write_png(tmp_path / "r" / ds / f"{n}.png")
    (tmp_path / "r" / "labels.csv").write_text("file,label\ns1/a.png,on\ns2/a,off\n")
    plan = plan_import(tmp_path / "r", classes=["off", "on"])
    assert plan.layout == "flat"
    assert [(d.name, [i.labels for i in d.items]) for d in plan.datasets] == [
        ("s1", [["on"], []]),
        ("s2", [["off"], []]),
    ]
    (tmp_path / "r" / "labels.csv").write_text("file,label\na.png,on\n")
    assert any("several datasets" in p for p in problems_of(tmp_path / "r", classes=["off", "on"]))
    (tmp_path / "r" / "labels.csv").unlink()  # folders that are not classes: unlabelled datasets
    plan = plan_import(tmp_path / "r", classes=["off", "on"])
    assert plan.layout == "flat" and [d.name for d in plan.datasets] == ["s1", "s2"]


def test_it_reads_a_labels_csv_that_is_not_utf8(tmp_path):
    write_png(tmp_path / "r" / "café.png")
    (tmp_path / "r" / "labels.csv").write_bytes("file;label\ncafé.png;on\n".encode("cp1252"))
    plan = plan_import(tmp_path / "r")
    assert plan.datasets[0].items[0].labels == ["on"]
    assert any("not UTF-8" in w for w in plan.warnings)


def test_it_names_every_validation_problem(tmp_path):
    root = tmp_path / "r"
    write_png(root / "a.png")
    write_png(root / "b.png")
    (root / "b.tif").write_bytes((root / "b.png").read_bytes())
    (root / "notes.txt").write_text("hello")
    (root / "huge.png").write_bytes(png_header(100_000, 100_000))
    (root / "labels.csv").write_text("file,label\na.png,tumour\nghost.png,on\n")
    problems = problems_of(root, classes=["off", "on"])
    text = "\n".join(problems)
    assert "notes.txt is not an image (PNG or TIFF expected)" in text
    assert "huge.png is 100,000 x 100,000 pixels" in text
    assert "same name: b (b.png and b.tif)" in text
    assert "ghost.png (line 3)" in text
    assert "tumour" in text and "allowed: off, on" in text
    assert len(problems) == 5


def test_it_names_missing_channels_and_mixed_sizes(tmp_path):
    root = tmp_path / "cells"
    for i in ("c1", "c2", "c3"):
        write_png(root / f"{i}_green.png", shape=(8, 8))
    write_png(root / "c1_red.png", shape=(8, 8))
    write_png(root / "c2_red.png", shape=(9, 8))
    text = "\n".join(problems_of(root, layout="channels", channels=["red", "green"]))
    assert "lack a channel: c3 (no red)" in text
    assert "channels of different sizes: c2 (8x8, 8x9)" in text


def test_it_refuses_empty_folders_and_text_only_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    assert problems_of(tmp_path / "empty") == ["no images were found (PNG or TIFF expected)"]
    (tmp_path / "t" / "off").mkdir(parents=True)
    (tmp_path / "t" / "off" / "readme.txt").write_text("hello")
    assert "no images were found" in str(problems_of(tmp_path / "t"))


def test_it_refuses_unknown_label_folders_and_accepts_crops(tmp_path):
    write_png(tmp_path / "g" / "on" / "a.png", shape=(10, 12))
    write_png(tmp_path / "g" / "off" / "b.png", shape=(11, 12))
    write_png(tmp_path / "g" / "maybe" / "c.png")
    text = "\n".join(problems_of(tmp_path / "g", classes=["off", "on"]))
    assert "maybe" in text and "allowed: off, on" in text
    shutil.rmtree(tmp_path / "g" / "maybe")
    plan = plan_import(tmp_path / "g", classes=["off", "on"])
    assert [i.labels for i in plan.datasets[0].items] == [["on"], ["off"]]


def test_it_plans_without_writing_anything(tmp_path):
    root = tmp_path / "r"
    write_png(root / "on" / "a.png")
    (root / "on" / "x.txt").write_text("x")
    before = listing(tmp_path)
    with pytest.raises(ImageSetError):
        plan_import(root)
    assert listing(tmp_path) == before
    (root / "on" / "x.txt").unlink()
    before = listing(tmp_path)
    plan_import(root, layout="flat")
    assert listing(tmp_path) == before


def test_it_reads_16_bit_channels_as_stored():
    plan = plan_import(DEEPLOC, classes=DEEPLOC_CLASSES)
    item = plan.datasets[0].items[0]
    arrays = [read_image(p) for p in item.paths]
    assert all(a.shape == (64, 64) and a.max() == 65535 for a in arrays)
    assert not np.array_equal(arrays[0], arrays[1])


def test_it_reads_a_png_from_bytes_in_a_plan(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x.png").write_bytes(png_bytes(np.zeros((3, 3), dtype=np.uint8)))
    assert plan_import(tmp_path / "r").datasets[0].items[0].name == "x"


def test_it_reads_a_csv_without_header(tmp_path):
    write_png(tmp_path / "r" / "a.png")
    write_png(tmp_path / "r" / "b.png")
    (tmp_path / "r" / "labels.csv").write_text("a.png,on\nb.png,off\n")
    plan = plan_import(tmp_path / "r")
    assert [i.labels for i in plan.datasets[0].items] == [["on"], ["off"]]


def test_it_does_not_mistake_underscored_names_for_channels(tmp_path):
    for m in ("mouse1", "mouse2"):
        for organ in ("liver", "brain"):
            write_png(tmp_path / "r" / f"{m}_{organ}.png")
    assert detect_layout(tmp_path / "r") == "flat"
    plan = plan_import(tmp_path / "r", layout="channels")  # asked for explicitly: any suffix is a channel
    assert plan.channels == ["brain", "liver"] and [i.name for i in plan.datasets[0].items] == [
        "mouse1",
        "mouse2",
    ]


def test_it_maps_class_names_case_insensitively_and_refuses_class_numbers_without_classes(tmp_path):
    write_png(tmp_path / "r" / "a.png")
    (tmp_path / "r" / "labels.csv").write_text("Id,Target\na,ON\n")
    assert plan_import(tmp_path / "r", classes=["off", "on"]).datasets[0].items[0].labels == ["on"]
    (tmp_path / "r" / "labels.csv").write_text("Id,Target\na,3\n")
    assert any("as numbers" in p for p in problems_of(tmp_path / "r"))
    assert any(": 3 (allowed: off, on)" in p for p in problems_of(tmp_path / "r", classes=["off", "on"]))
