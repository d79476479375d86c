"""The dataset page's download: prepared by a job with progress shown, then downloaded."""

from __future__ import annotations

import zipfile

import pytest

from tests.browser.conftest import log_in
from tests.factories import PASSWORD, ProjectFactory, UserFactory
from tests.gallery_data import make_ready_dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_downloads_a_dataset_prepared_by_a_job(new_page, tmp_path):
    owner = UserFactory()
    project = ProjectFactory(owner=owner, name="Lung")
    ds = make_ready_dataset(project, n=5, name="lung section")
    page = new_page()
    log_in(page, owner.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/")
    with page.expect_download() as info:
        page.click("#download-dataset")
    download = info.value
    assert download.suggested_filename == "lung section.zip"
    path = tmp_path / "d.zip"
    download.save_as(path)
    with zipfile.ZipFile(path) as z:
        assert sum(n.endswith(".png") for n in z.namelist()) == 5
    assert "downloading" in page.locator("#download-status").inner_text().lower()
    assert not page.errors
