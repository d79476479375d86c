from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from ionsieve_core.imagesets.images import read_image
from ionsieve_core.imagesets.layouts import plan_import
from ionsieve_core.imagesets.writer import (
    safe_name,
    write_channels_layout,
    write_flat_layout,
    write_gs_layout,
    write_png,
    write_scales_csv,
)
from tests.imagesets.helpers import DEEPLOC, DEEPLOC_CLASSES, METASPACE

RNG = np.random.default_rng(3)


def image(shape=(6, 7)) -> np.ndarray:
    return RNG.normal(10, 3, shape).astype(np.float32)


def summary(plan) -> list:
    return [(d.name, [(i.name, i.labels) for i in d.items]) for d in plan.datasets]


def test_it_writes_a_16_bit_png_scaled_to_its_own_range(tmp_path):
    a = np.array([[-2.0, 0.0], [np.nan, 6.0]])
    scale = write_png(a, tmp_path / "a.png")
    assert scale == {"min": -2.0, "max": 6.0}
    with Image.open(tmp_path / "a.png") as im:
        assert im.mode.startswith("I")
    back = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(back, [[0, 16384], [0, 65535]])  # NaN -> 0
    restored = scale["min"] + back / 65535 * (scale["max"] - scale["min"])
    assert restored[0, 1] == pytest.approx(0.0, abs=1e-3) and restored[1, 1] == pytest.approx(6.0)
    assert write_png(np.full((2, 2), np.nan), tmp_path / "n.png") == {"min": 0.0, "max": 0.0}


def test_it_writes_an_8_bit_preview_png_on_request(tmp_path):
    scale = write_png(np.array([[1.0, 2.0], [3.0, 5.0]]), tmp_path / "p.png", mode="8bit")
    assert scale == {"min": 1.0, "max": 5.0}
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "L"
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), [[0, 64], [128, 255]])
    with pytest.raises(ValueError):
        write_png(np.zeros((2, 2)), tmp_path / "q.png", mode="12bit")


def test_it_round_trips_the_gold_standard_layout(tmp_path):
    datasets = [
        ("ds 1", [("a", image(), ["on"]), ("b", image((5, 7)), ["off"]), ("c", image(), [])]),
        ("ds2", [("a", image(), ["off"]), ("z", image(), ["on"])]),
    ]
    rows = write_gs_layout(tmp_path / "out", datasets)
    assert rows[0][:3] == ("ds 1", "ds 1/on/a.png", "on") and len(rows) == 5
    plan = plan_import(tmp_path / "out", classes=["off", "on"])
    assert plan.layout == "gs"
    assert dict(summary(plan)) == {
        "ds 1": [("a", ["on"]), ("b", ["off"]), ("c", [])],
        "ds2": [("a", ["off"]), ("z", ["on"])],
    }
    with pytest.raises(ValueError, match="flat layout"):
        write_gs_layout(tmp_path / "o2", [("d", [("a", image(), ["on", "off"])])])


def test_it_round_trips_the_flat_layout_with_multi_labels_and_stacks(tmp_path):
    stack = image((4, 5, 3))
    datasets = [("plate", [("x1", image(), ["on", "off"]), ("x2", stack, []), ("x10", image(), ["off"])])]
    rows = write_flat_layout(tmp_path / "out", datasets)
    assert [r[1] for r in rows] == ["plate/x1.png", "plate/x2.tif", "plate/x10.png"]
    plan = plan_import(tmp_path / "out")
    assert plan.layout == "flat"
    assert summary(plan) == [("plate", [("x1", ["on", "off"]), ("x2", []), ("x10", ["off"])])]
    np.testing.assert_array_equal(read_image(plan.datasets[0].items[1].paths[0]), stack)
    two = [("s1", [("a", image(), ["on"])]), ("s2", [("a", image(), ["off"])])]
    write_flat_layout(tmp_path / "two", two)
    assert summary(plan_import(tmp_path / "two")) == [
        ("s1", [("a", ["on"])]),
        ("s2", [("a", ["off"])]),
    ]


def test_it_round_trips_the_channels_layout(tmp_path):
    classes = ["ER", "bud", "nucleus"]
    datasets = [
        (
            "yeast",
            [("cell1", image((8, 8, 2)), ["bud"]), ("cell2", image((8, 8, 2)), ["ER", "nucleus"])],
        )
    ]
    rows = write_channels_layout(tmp_path / "out", datasets, ["green", "red"], classes)
    assert [r[1] for r in rows][:2] == ["yeast/cell1_green.png", "yeast/cell1_red.png"]
    with open(tmp_path / "out" / "yeast" / "labels.csv") as fh:
        assert next(csv.reader(fh)) == ["Id", "Target"]
    plan = plan_import(tmp_path / "out", channels=["green", "red"], classes=classes)
    assert plan.layout == "channels" and plan.channels == ["green", "red"]
    assert summary(plan) == [("yeast", [("cell1", ["bud"]), ("cell2", ["ER", "nucleus"])])]
    green = read_image(plan.datasets[0].items[0].paths[0])
    orig = datasets[0][1][0][1][..., 0]
    lo, hi = rows[0][3], rows[0][4]
    np.testing.assert_allclose(lo + green / 65535 * (hi - lo), orig, atol=(hi - lo) / 65535)
    with pytest.raises(ValueError, match="not among the classes"):
        write_channels_layout(
            tmp_path / "o2",
            [("y", [("c", image((8, 8, 2)), ["golgi"])])],
            ["green", "red"],
            classes,
        )


def test_it_round_trips_the_real_metaspace_images(tmp_path):
    plan = plan_import(METASPACE)
    datasets = [
        (d.name, [(i.name, read_image(i.paths[0]), i.labels) for i in d.items]) for d in plan.datasets
    ]
    write_gs_layout(tmp_path / "out", datasets)
    assert summary(plan_import(tmp_path / "out")) == summary(plan)


def test_it_sanitises_names_for_the_file_system(tmp_path):
    assert safe_name("../../etc/passwd") == "_etc_passwd"
    assert safe_name("..") == "_" and safe_name(" . ") == "unnamed" and safe_name("a\x00b\nc") == "a_b_c"
    rows = write_flat_layout(
        tmp_path / "out",
        [("../evil", [("../x", image(), ["on"]), ("a/b", image(), []), ("a_b", image(), [])])],
    )
    assert all(not r[1].startswith("..") and (tmp_path / "out" / r[1]).is_file() for r in rows)
    assert [r[1] for r in rows] == ["_evil/_x.png", "_evil/a_b.png", "_evil/a_b-2.png"]
    write_scales_csv(tmp_path / "scales.csv", rows)
    with open(tmp_path / "scales.csv") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["dataset", "file", "label", "min", "max"] and len(lines) == 4


def test_it_exports_a_plans_own_paths_in_every_layout(tmp_path):
    # ImageItem.paths go straight into the writers: one file, or one file per channel.
    yeast = plan_import(DEEPLOC, classes=DEEPLOC_CLASSES)
    items = [(d.name, [(i.name, i.paths, i.labels) for i in d.items]) for d in yeast.datasets]
    rows = write_channels_layout(tmp_path / "ch", items, yeast.channels, DEEPLOC_CLASSES)
    back = plan_import(tmp_path / "ch", classes=DEEPLOC_CLASSES)
    assert back.layout == "channels" and back.channels == ["red", "green"]
    assert summary(back) == summary(yeast) and len(rows) == 72
    first = back.datasets[0].items[0]
    for original, written in zip(yeast.datasets[0].items[0].paths, first.paths, strict=True):
        np.testing.assert_array_equal(read_image(written), read_image(original))  # full range
    write_flat_layout(tmp_path / "flat", items)
    stacked = plan_import(tmp_path / "flat", classes=DEEPLOC_CLASSES)
    assert stacked.layout == "flat" and summary(stacked) == summary(yeast)
    assert read_image(stacked.datasets[0].items[0].paths[0]).shape == (64, 64, 2)
    gs = plan_import(METASPACE)
    write_gs_layout(
        tmp_path / "gs",
        [(d.name, [(i.name, i.paths[0], i.labels) for i in d.items]) for d in gs.datasets],
    )
    assert summary(plan_import(tmp_path / "gs")) == summary(gs)
    with pytest.raises(ValueError, match="one size"):
        write_flat_layout(tmp_path / "bad", [("d", [("x", [image((4, 4)), image((5, 4))], [])])])
