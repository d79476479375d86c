"""The image page's viewer: native resolution, zoom, clips, colour maps, channel composites."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from ionsieve_core.imaging.colormaps import lut_8bit
from ionsieve_core.imaging.scaling import display_scale
from tests.browser.conftest import log_in
from tests.browser.test_accessibility import _violations
from tests.factories import PASSWORD, ProjectFactory, UserFactory
from tests.gallery_data import make_ready_dataset
from webapp.datasets.models import Dataset
from webapp.pages.figure_data import _image_heatmap

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCALING_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "scaling.js"

# The colour of one pixel of the image as drawn (the Plotly image trace's PNG source).
PIXEL = """async ([x, y]) => {
  const img = new Image();
  img.src = document.getElementById('fig-image').data[0].source;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return Array.from(ctx.getImageData(x, y, 1, 1).data);
}"""
SOURCE = "document.getElementById('fig-image').data[0].source"


def _open(page, user, image) -> None:
    log_in(page, user.username, PASSWORD)
    page.goto(f"/images/{image.pk}/")
    page.wait_for_selector("#fig-image[data-render-ms]")


def _range(page) -> list[float]:
    return page.evaluate("document.getElementById('fig-image')._fullLayout.xaxis.range")


def _changed(page, before: str) -> str:
    page.wait_for_function(f"{SOURCE} !== {before!r}")
    return page.evaluate(SOURCE)


def test_it_scales_in_the_browser_as_the_server_does(new_page):
    page = new_page()
    page.set_content("<!doctype html><title>scaling</title>")
    page.add_script_tag(path=str(SCALING_JS))
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(2, 1.5, 500), [0, 0, 0, 7, 7, np.nan, np.nan, 1e6]]).astype(
        np.float32
    )
    as_js = [None if np.isnan(v) else float(v) for v in values]
    cases = [
        (lo, hi, mode)
        for lo, hi in [(-np.inf, np.inf), (0.5, 40.0), (3.0, 3.0), (50.0, 2.0), (7.0, 1e5), (0, 7.0)]
        for mode in ("linear", "log", "equalized")
    ]
    # Each case alone, and all with one memo (what the page keeps per image while sliders move).
    fresh, memo = page.evaluate(
        """([v, cases]) => {
        const values = Float32Array.from(v, x => x === null ? NaN : x), memo = {};
        const plain = a => Array.from(a, x => isNaN(x) ? null : x);
        return [cases.map(([lo, hi, mode]) => plain(IonSieveScale.displayScale(values, lo, hi, mode))),
                cases.map(([lo, hi, mode]) => plain(IonSieveScale.displayScale(values, lo, hi, mode, memo)))];
    }""",
        [as_js, [[_js_number(lo), _js_number(hi), mode] for lo, hi, mode in cases]],
    )
    for (lo, hi, mode), a, b in zip(cases, fresh, memo, strict=True):
        expected = display_scale(values, lo, hi, mode)
        for got in (a, b):
            got = np.array([np.nan if x is None else x for x in got])
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"{mode} {lo}..{hi}")


def _js_number(x: float):
    # JSON has no infinity: a bound past every value clips nothing, as ±inf does.
    return 3e38 if x == np.inf else -3e38 if x == -np.inf else x


def test_it_zooms_drags_a_clip_and_switches_the_colour_map(new_page):  # noqa: PLR0915 - one browser session, control after control
    owner = UserFactory()
    project = ProjectFactory(owner=owner)
    ds = make_ready_dataset(project, n=2, shape=(60, 80), thumbnails=False)
    image = ds.images.get(index=1)
    page = new_page()
    _open(page, owner, image)
    assert page.evaluate("IonSieveViewer.state.w") == 80 and page.evaluate("IonSieveViewer.state.h") == 60
    xrange = page.evaluate("document.getElementById('fig-image')._fullLayout.xaxis.range")
    assert xrange[1] - xrange[0] >= 79  # the whole image, every pixel
    page.click("#zoom-in")
    page.wait_for_function(
        "(w) => { const r = document.getElementById('fig-image')._fullLayout.xaxis.range; return r[1] - r[0] < w; }",
        arg=(xrange[1] - xrange[0]) * 0.6,
    )
    # The keyboard pans the focused image.
    page.focus("#fig-image")
    x0, x1 = _range(page)
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(x0) => document.getElementById('fig-image')._fullLayout.xaxis.range[0] > x0 + 1", arg=x0
    )
    url = page.url
    page.keyboard.press("+")
    page.wait_for_function(
        "(w) => { const r = document.getElementById('fig-image')._fullLayout.xaxis.range; return r[1] - r[0] < w; }",
        arg=(x1 - x0) * 0.6,
    )
    assert page.url == url  # the arrow did not go to the next image
    page.click("#zoom-reset")
    page.wait_for_function(
        "(() => { const r = document.getElementById('fig-image')._fullLayout.xaxis.range;"
        " return r[1] - r[0] >= 79; })()"
    )

    # Drag the upper clip down.
    before = page.evaluate(SOURCE)
    box = page.locator("#clip-hi").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] - 4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    page.mouse.up()
    assert float(page.input_value("#clip-hi")) < 95  # from the hotspot clip (~99th percentile)
    before = _changed(page, before)
    assert "hotspot" not in page.text_content("#clip-hi-value")
    page.select_option("#cmap", "magma")
    _changed(page, before)

    lo, hi = page.evaluate("""(() => { const ch = IonSieveViewer.state.channels[0];
        return [IonSieveScale.quantile(ch.quantiles, +document.getElementById('clip-lo').value),
                IonSieveScale.quantile(ch.quantiles, +document.getElementById('clip-hi').value)]; })()""")
    raw = np.load(ds.array_path)[1]
    expected_scale = display_scale(raw, lo, hi, "linear")
    table = lut_8bit("magma")
    for x, y in [(5, 7), (79, 59), (40, 30)]:
        rgba = page.evaluate(PIXEL, [x, y])
        want = table[int(np.rint(expected_scale[y, x] * 255))]
        assert rgba[3] == 255 and np.abs(np.array(rgba[:3], int) - want).max() <= 3, (x, y, rgba, want)
    assert page.evaluate(PIXEL, [0, 0])[3] == 0  # not acquired: transparent
    before = page.evaluate(SOURCE)
    page.select_option("#scaling", "equalized")
    _changed(page, before)
    # Pointing at a pixel reads its raw value out.
    plot = page.locator("#fig-image .nsewdrag").bounding_box()
    page.mouse.move(plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2)
    page.wait_for_function("document.getElementById('pixel-readout').textContent.startsWith('x ')")
    text = page.text_content("#pixel-readout")
    x, y = (int(t) for t in text.split(":")[0].replace("x ", "").split(", y "))
    assert f"intensity {raw[y, x]:.4g}".replace("e+0", "e+") in text or f"{raw[y, x]:.3f}"[:4] in text
    assert not page.errors


def test_it_shows_a_two_channel_image_as_a_composite_with_toggles(new_page):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Cells", task="multiclass", classes="ER,bud,nucleus")
    project.channels = ["green", "blue"]
    project.save()
    ds = make_ready_dataset(project, n=1, shape=(20, 30), probs=np.full((1, 3), 1 / 3), thumbnails=False)
    stack = np.zeros((1, 20, 30, 2), np.float32)
    stack[0, :, :15, 0] = np.linspace(1, 2, 15)  # the first channel on the left half
    stack[0, :, 15:, 1] = np.linspace(1, 2, 15)  # the second on the right
    np.save(ds.array_path, stack)
    Dataset.objects.filter(pk=ds.pk).update(channels=2)
    page = new_page()
    _open(page, owner, ds.images.get())
    assert page.locator("#channels input[type=checkbox]").count() == 2
    assert not page.is_visible("#cmap")  # the composite takes the channels' colours
    left, right = page.evaluate(PIXEL, [14, 10]), page.evaluate(PIXEL, [29, 10])
    assert left[1] > 200 and left[0] == left[2] == 0  # green
    assert right[2] > 200 and right[0] == right[1] == 0  # blue
    assert page.text_content("#channels").count("Show") == 2

    before = page.evaluate(SOURCE)
    page.get_by_label("Show green").uncheck()
    before = _changed(page, before)
    assert page.evaluate(PIXEL, [14, 10])[:3] == [0, 0, 0]
    page.get_by_label("Colour of blue").select_option("magenta")
    _changed(page, before)
    right = page.evaluate(PIXEL, [29, 10])
    assert right[0] > 200 and right[2] > 200 and right[1] == 0
    assert _violations(page) == []
    page.emulate_media(color_scheme="dark")
    assert _violations(page) == []
    assert not page.errors


def test_it_draws_a_2000_by_2000_image_at_native_resolution(new_page, capsys):
    owner = UserFactory()
    project = ProjectFactory(owner=owner)
    ds = make_ready_dataset(project, n=1, shape=(2000, 2000), thumbnails=False)
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    start = time.perf_counter()
    page.goto(f"/images/{ds.images.get().pk}/")
    page.wait_for_selector("#fig-image[data-render-ms]", timeout=120_000)
    loaded = time.perf_counter() - start
    assert page.evaluate("[IonSieveViewer.state.h, IonSieveViewer.state.w]") == [2000, 2000]
    first = float(page.get_attribute("#fig-image", "data-render-ms"))
    before = page.evaluate(SOURCE)
    page.select_option("#cmap", "turbo")
    _changed(page, before)
    again = float(page.get_attribute("#fig-image", "data-render-ms"))
    before = page.evaluate(SOURCE)
    page.select_option("#scaling", "equalized")  # the slowest: a sort of every value
    _changed(page, before)
    equalised = float(page.get_attribute("#fig-image", "data-render-ms"))
    before = page.evaluate(SOURCE)
    page.fill("#clip-hi", "90")  # a clip moved: the ranks are kept, one pass repaints
    _changed(page, before)
    moved = float(page.get_attribute("#fig-image", "data-render-ms"))
    sent, size_in_browser = page.evaluate("""(() => { const r = performance.getEntriesByType('resource')
        .find(e => e.name.includes('/figures/image.json')); return [r.encodedBodySize, r.decodedBodySize]; })()""")
    built = time.perf_counter()
    size = len(_image_heatmap(ds.images.get()))  # what the page fetched (the browser keeps no body this big)
    sent, size_in_browser = page.evaluate("""(() => { const r = performance.getEntriesByType('resource')
        .find(e => e.name.includes('/figures/image.json')); return [r.encodedBodySize, r.decodedBodySize]; })()""")
    built = time.perf_counter() - built
    with capsys.disabled():
        print(
            f"\n2000x2000: payload {size / 1e6:.1f} MB ({sent / 1e6:.1f} MB gzipped) built in {built:.2f} s, page to drawn {loaded:.1f} s, "
            f"paint {first:.0f} ms, repaint after a colour map change {again:.0f} ms, "
            f"histogram-equalised {equalised:.0f} ms "
            f"(first), {moved:.0f} ms (clip moved)"
        )
    assert size < 25e6  # 4 bytes a pixel, base64: JSON lists of numbers were ~3x more
    assert size_in_browser == size and sent < 0.8 * size  # gzip takes off at least base64's third
