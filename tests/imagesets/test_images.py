from __future__ import annotations

import io
import time
import tracemalloc

import numpy as np
import pytest
import tifffile
from PIL import Image

from ionsieve_core.imagesets.errors import ImageSetError
from ionsieve_core.imagesets.images import image_shape, read_image
from ionsieve_core.imaging.colormaps import lut_8bit, lut_float
from tests.imagesets.helpers import METASPACE, png_bytes, png_header

VIRIDIS_LUT, VIRIDIS_LUT_8BIT = lut_float("viridis"), lut_8bit("viridis")


def test_it_reads_16_bit_png_over_the_full_range(tmp_path):
    a = np.array([[0, 1, 2], [65533, 65534, 65535]], dtype=np.uint16)
    (tmp_path / "a.png").write_bytes(png_bytes(a))
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.float32 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, a.astype(np.float32))


def test_it_reads_8_bit_png_from_bytes():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_array_equal(read_image(png_bytes(a), name="x.png"), a)


def test_it_turns_multi_page_tiff_pages_into_channels(tmp_path):
    stack = np.stack([np.full((5, 7), k, dtype=np.uint16) for k in (10, 20, 30)])
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack", metadata=None)  # 3 pages
    with tifffile.TiffFile(tmp_path / "s.tif") as tf:
        assert len(tf.pages) == 3
    out = read_image(tmp_path / "s.tif")
    assert out.shape == (5, 7, 3)
    assert [float(out[0, 0, k]) for k in range(3)] == [10.0, 20.0, 30.0]


def test_it_reads_planar_tiff_samples_and_float_tiffs(tmp_path):
    stack = np.arange(2 * 4 * 6, dtype=np.uint16).reshape(2, 4, 6)
    tifffile.imwrite(tmp_path / "planar.tif", stack)  # one page, 2 samples stored planar
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), np.moveaxis(stack, 0, -1))
    f = np.linspace(-1.5, 2.5, 20, dtype=np.float32).reshape(4, 5)
    f[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "f.tiff", f)
    out = read_image(tmp_path / "f.tiff")
    assert out.shape == (4, 5) and np.isnan(out[0, 0])
    np.testing.assert_array_equal(out[1:], f[1:])


def test_it_averages_non_viridis_rgb_to_grey():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (30, 60, 90)
    rgb[1, 1] = (255, 255, 255)
    rgb[0, 1] = (200, 10, 0)
    out = read_image(png_bytes(rgb))
    assert (
        out[0, 0] == pytest.approx(60) and out[1, 1] == pytest.approx(255) and out[0, 1] == pytest.approx(70)
    )


def test_it_inverts_a_viridis_ramp_to_within_one_step():
    steps = np.round(np.linspace(0, 1, 1000) * 255).astype(int)  # a render: 256 colours
    rgb = VIRIDIS_LUT_8BIT[steps][None, :, :].repeat(3, axis=0)
    out = read_image(png_bytes(rgb))[1]
    assert np.all(np.diff(out) >= 0), "the scalar must grow along the colour map"
    # within one LUT step: 8-bit viridis repeats a few colours, which map to the first of them
    assert np.max(np.abs(out - steps / 255)) <= 1 / 255 + 1e-6


def test_it_reads_the_real_viridis_renders_as_0_to_1():
    for path in sorted(METASPACE.glob("*/intsco_*.png")):
        with Image.open(path) as im:
            assert im.mode == "RGB"
        out = read_image(path)
        assert out.ndim == 2 and out.dtype == np.float32
        assert np.nanmin(out) >= 0.0 and np.nanmax(out) <= 1.0, path.name
        assert np.nanmax(out) - np.nanmin(out) > 0.5, path.name  # a real ion image, not a flat colour


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(np.float64)


def test_it_inverts_the_real_viridis_renders_in_the_order_of_their_brightness():
    # Viridis grows brighter along its length, so the recovered scalar must rank the colours of a
    # real render as their luminance does (Spearman over the distinct colours).
    assert np.all(np.diff(VIRIDIS_LUT @ [0.299, 0.587, 0.114]) > 0)
    renders = sorted(METASPACE.glob("*/intsco_*.png"))
    assert len(renders) == 6
    for path in renders:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        out = read_image(path)
        flat = rgb.reshape(-1, 3).astype(np.int64)
        _, first = np.unique(flat @ [65536, 256, 1], return_index=True)  # one pixel per colour
        colours = flat[first]
        scalar = out.reshape(-1)[first]
        keep = np.isfinite(scalar)
        luma = colours[keep] @ np.array([0.299, 0.587, 0.114])
        rho = np.corrcoef(_ranks(scalar[keep]), _ranks(luma))[0, 1]
        assert rho > 0.98, (path.name, rho)
        # the darkest and brightest drawn colours sit at the ends of the colour map
        assert scalar[keep][np.argmin(luma)] < 0.1 and scalar[keep][np.argmax(luma)] > 0.9


def test_it_makes_annotations_on_a_viridis_render_nan():
    ramp = VIRIDIS_LUT_8BIT[np.arange(256)][None].repeat(8, axis=0)  # (8, 256, 3)
    ramp[2:4, 10:30] = 255  # a white scale bar
    out = read_image(png_bytes(ramp))
    assert np.isnan(out[2:4, 10:30]).all() and np.isnan(out).sum() == 40
    np.testing.assert_allclose(out[0], np.arange(256) / 255, atol=1 / 255 + 1e-6)  # 8-bit repeats
    real = METASPACE / "on" / "intsco_on-1.png"  # carries a white "5 mm" scale bar
    with Image.open(real) as im:
        white = np.asarray(im.convert("RGB")).min(axis=2) > 240
    out = read_image(real)
    assert white.sum() > 100 and np.isnan(out[white]).all()
    assert np.isnan(out).mean() < 0.02 and np.nanmax(out) > 0.9


def test_it_makes_transparent_pixels_nan():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = 255
    rgba[0, 1, 3] = 0
    out = read_image(png_bytes(rgba))
    assert np.isnan(out[0, 1]) and np.isnan(out).sum() == 1 and out[1, 2] == pytest.approx(120)
    la = np.zeros((2, 2, 2), dtype=np.uint8)
    la[..., 0] = 7
    la[..., 1] = 255
    la[1, 0, 1] = 0
    out = read_image(png_bytes(la, mode="LA"))
    assert np.isnan(out[1, 0]) and out[0, 0] == 7
    real = read_image(METASPACE / "on" / "service_test_on.png")  # a real LA render
    assert real.shape == (119, 254)


def test_it_refuses_a_png_claiming_100k_by_100k_without_allocating():
    data = png_header(100_000, 100_000)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ImageSetError) as err:
        read_image(data, name="huge.png")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "huge.png" in str(err.value) and "100,000 x 100,000" in str(err.value)
    assert peak < 5_000_000 and time.perf_counter() - t0 < 1


def test_it_refuses_over_max_pixels_for_tiff_too(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((100, 100), dtype=np.uint8))
    assert image_shape(tmp_path / "t.tif") == (100, 100, 1)
    with pytest.raises(ImageSetError, match="t.tif is 100 x 100 pixels"):
        read_image(tmp_path / "t.tif", max_pixels=5000)


def test_it_refuses_files_that_are_not_images(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageSetError) as err:
        read_image(tmp_path / "notes.txt")
    assert err.value.problems == ["notes.txt is not an image (PNG or TIFF expected)"]
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "JPEG")
    with pytest.raises(ImageSetError, match="PNG or TIFF expected"):
        read_image(buf.getvalue(), name="photo.jpg")


def test_it_refuses_a_truncated_png_as_damaged():
    data = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(ImageSetError, match="cut.png could not be read"):
        read_image(data[: len(data) // 2], name="cut.png")
