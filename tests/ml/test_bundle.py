from __future__ import annotations

import json
import zipfile

import numpy as np

from ionsieve_core import ml


def test_it_round_trips_a_bundle_with_identical_predictions(binary_result, tiny_data, tmp_path):
    path = tmp_path / "m" / "v1.zip"
    ml.save_bundle(binary_result.bundle, path)
    assert [p.name for p in path.parent.iterdir()] == ["v1.zip"]  # no temp file left behind
    loaded = ml.load_bundle(path)
    assert loaded is not None
    assert loaded.thresholds == binary_result.bundle.thresholds
    assert loaded.calibration == binary_result.bundle.calibration
    assert loaded.params == binary_result.bundle.params
    a = ml.predict(binary_result.bundle, tiny_data.images)
    b = ml.predict(loaded, tiny_data.images)
    np.testing.assert_array_equal(a, b)


def test_it_returns_none_for_bad_files(binary_result, tmp_path, caplog):
    good = tmp_path / "good.zip"
    ml.save_bundle(binary_result.bundle, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"not a zip at all" * 100)
    future = tmp_path / "future.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(future, "w") as dst:
        for item in src.namelist():
            content = src.read(item)
            if item == "meta.json":
                meta = json.loads(content)
                meta["format_version"] = 999
                content = json.dumps(meta).encode()
            dst.writestr(item, content)
    no_model = tmp_path / "no_model.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(no_model, "w") as dst:
        dst.writestr("meta.json", src.read("meta.json"))
    for bad in (truncated, corrupt, future, no_model, tmp_path / "missing.zip"):
        assert ml.load_bundle(bad) is None, bad
    assert "cannot be loaded" in caplog.text and "format version" in caplog.text
