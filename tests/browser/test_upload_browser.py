"""Resumable uploads in the browser: the project page's dataset upload and the import page,
with a network cut and a reload in the middle; the upload continues where the server stopped."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.browser.conftest import log_in, screenshot
from tests.datasets.helpers import synthetic
from tests.factories import PASSWORD, ProjectFactory, UserFactory
from webapp.datasets.models import Dataset, Upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PART = 16384  # small parts so that a few-kB test file takes several requests


def _page(new_page, user):
    page = new_page()
    page.add_init_script(f"window.IONSIEVE_UPLOAD_PART = {PART};")
    log_in(page, user.username, PASSWORD)
    return page


def test_it_resumes_a_dataset_upload_after_a_cut_and_a_reload(new_page, tmp_path):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, slug="brain")
    truth = synthetic(tmp_path, seed=4, n_on=3, n_off=3)
    imzml, ibd = Path(truth.imzml_path), Path(truth.imzml_path).with_suffix(".ibd")
    assert imzml.stat().st_size > 6 * PART
    page = _page(new_page, owner)
    offsets: list[int] = []
    urls: list[str] = []

    def cut_after_four(route):
        urls.append(route.request.url)
        if len(urls) > 3:  # the network dies after 3 parts of the .imzML
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.on("request", lambda r: r.method == "PATCH" and offsets.append(int(r.headers["upload-offset"])))
    checksums: list[str] = []
    page.on(
        "request", lambda r: r.method == "PATCH" and checksums.append(r.headers.get("upload-checksum", ""))
    )
    page.route(
        "**/api/uploads/*/",
        lambda route: cut_after_four(route) if route.request.method == "PATCH" else route.continue_(),
    )
    page.goto(f"/p/{project.slug}/")
    page.set_input_files("#files", [str(imzml), str(ibd)])
    page.fill("#ds-name", "cut and resumed")
    page.click("#upload-btn")
    page.wait_for_function("() => Number(document.querySelector('#upload-progress progress').value) > 0")
    # Parts go one after the other: once the 4th was cut, the 3rd is stored (no fixed sleep).
    for _ in range(300):
        if len(urls) > 3:
            break
        page.wait_for_timeout(100)
    held = Upload.objects.get(filename=imzml.name).offset
    assert held == 3 * PART and not Dataset.objects.exists()  # nothing half-made visible

    # Reload before the network comes back: a retry of the old page must not get through first.
    page.reload()
    page.unroute("**/api/uploads/*/")
    assert "Unfinished upload of" in page.locator("#upload-unfinished").inner_text()
    first_after_reload = len(offsets)
    page.set_input_files("#files", [str(imzml), str(ibd)])
    page.fill("#ds-name", "cut and resumed")
    page.click("#upload-btn")
    page.wait_for_selector("text=cut and resumed", timeout=60_000)
    ds = Dataset.objects.get()
    assert ds.ibd_path.read_bytes() == ibd.read_bytes() and ds.imzml_path.read_bytes() == imzml.read_bytes()
    assert offsets[first_after_reload] == held  # continued where the server stopped: nothing resent
    # localhost is a secure context: every part went with its SHA-1 (crypto.subtle)
    assert checksums and all(c.startswith("sha1 ") and len(c) == 33 for c in checksums), checksums[:3]
    assert not Upload.objects.exists()
    screenshot(page, "upload-resumed.png")
    assert not page.errors


def test_it_imports_a_zip_through_a_resumable_upload_with_progress(new_page, tmp_path):
    from tests.imagesets.helpers import make_zip, png_bytes

    owner = UserFactory()
    project = ProjectFactory(owner=owner, slug="cells")
    rng = np.random.default_rng(0)
    entries = {
        f"ds/{cls}/{i}.png": png_bytes(rng.integers(0, 255, (16, 16), dtype=np.uint8))
        for i, cls in enumerate(["off", "on"] * 4)
    }
    archive = make_zip(tmp_path / "cells.zip", entries)
    page = _page(new_page, owner)
    page.goto(f"/p/{project.slug}/import/")
    page.set_input_files("input[name=archive]", str(archive))
    texts: list[str] = []
    page.expose_function("seen", lambda t: texts.append(t))
    page.evaluate("""() => new MutationObserver(() => window.seen(document.querySelector('#import-progress span').textContent))
                     .observe(document.querySelector('#import-progress span'), {childList: true, characterData: true, subtree: true})""")
    page.click("#import-btn")
    page.wait_for_url(f"**/p/{project.slug}/", timeout=60_000)
    assert any("Uploading cells.zip" in t and " of " in t for t in texts)
    assert Dataset.objects.filter(project=project, kind=Dataset.Kind.IMAGES).exists()
    assert not Upload.objects.exists()
    assert not page.errors


def test_it_says_why_a_refused_upload_was_refused(new_page, tmp_path):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, slug="liver")
    page = _page(new_page, owner)
    bad = tmp_path / "notes.imzML"
    bad.write_text("not xml")
    ibd = tmp_path / "notes.ibd"
    ibd.write_bytes(b"\0" * 100)
    page.goto(f"/p/{project.slug}/")
    page.set_input_files("#files", [str(bad), str(ibd)])
    page.route(
        "**/api/projects/*/datasets/from-uploads/",
        lambda route: route.continue_(
            post_data=re.sub(r'("ibd_crc32":")[0-9a-f]{8}', r"\g<1>00000000", route.request.post_data)
        ),
    )
    page.click("#upload-btn")
    page.wait_for_selector("#upload-error:not([hidden])")
    assert "does not match the file you sent" in page.locator("#upload-error").inner_text()
    assert not Dataset.objects.exists()
