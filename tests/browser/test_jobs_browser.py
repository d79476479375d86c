"""A way out of a stuck job, clicked in a real browser: cancel it, then retry it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.conftest import log_in, screenshot
from tests.factories import PASSWORD, ProjectFactory, UserFactory, add_member
from tests.gallery_data import make_ready_dataset
from webapp.datasets.models import Dataset
from webapp.jobs import dispatch
from webapp.jobs.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_cancels_and_retries_a_stuck_ingestion_from_the_dataset_page(new_page, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "send", lambda job_id: sent.append(job_id) or True)  # no worker here
    owner, annotator = UserFactory(), UserFactory()
    project = ProjectFactory(owner=owner)
    add_member(project, annotator, "annotator")
    ds = make_ready_dataset(project, n=4, thumbnails=False, name="Stuck section")
    Dataset.objects.filter(pk=ds.pk).update(status=Dataset.Status.PROCESSING, progress=0.34)
    job = Job.objects.create(
        project=project,
        kind=Job.Kind.INGEST,
        target_id=ds.pk,
        status=Job.Status.RUNNING,
        attempts=1,
        progress=0.34,
    )
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=8))

    page = new_page()
    log_in(page, annotator.username, PASSWORD)
    page.goto(f"/datasets/{ds.pk}/")
    assert "No news from its worker" in page.locator("#dataset-job .job-stuck").inner_text()
    screenshot(page, "stuck-job.png")
    page.click("#dataset-job button[data-job-action=cancel]")
    page.wait_for_selector("#dataset-error")  # after the page reloads
    assert (
        f"Processing was stopped (cancelled by {annotator.username})"
        in page.locator("#dataset-error").inner_text()
    )
    assert Job.objects.get(pk=job.pk).status == "cancelled"

    page.click("#dataset-job button[data-job-action=retry]")
    page.wait_for_selector("#dataset-job li[data-status=queued]")
    assert page.locator("#dataset-error").count() == 0
    ds.refresh_from_db()
    assert ds.status == "uploaded" and sent == [job.pk]
    assert not page.errors
