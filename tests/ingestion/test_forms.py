"""The import page and the import API refuse the same way: one check (forms.checked_import)."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.jobs.models import Job


def test_the_page_and_the_api_refuse_a_file_that_is_not_a_zip(client, api, user, project):
    client.force_login(user)
    page = client.post(f"/p/{project.slug}/import/", {"archive": SimpleUploadedFile("pics.tar", b"x")})
    assert page.status_code == 200
    assert "&#x27;pics.tar&#x27; is not a .zip archive" in page.content.decode()
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{project.slug}/imports/",
        {"archive": SimpleUploadedFile("pics.tar", b"x")},
        format="multipart",
    )
    assert r.status_code == 400 and r.json() == {"detail": "'pics.tar' is not a .zip archive."}
    assert not Job.objects.exists()


def test_the_page_and_the_api_refuse_an_archive_above_the_limit(client, api, user, project, settings):
    settings.IONSIEVE_MAX_UPLOAD_BYTES = 3
    client.force_login(user)
    page = client.post(f"/p/{project.slug}/import/", {"archive": SimpleUploadedFile("pics.zip", b"PK..")})
    assert "above this server&#x27;s limit" in page.content.decode()
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{project.slug}/imports/",
        {"archive": SimpleUploadedFile("pics.zip", b"PK..")},
        format="multipart",
    )
    assert r.status_code == 400 and "above this server's limit" in r.json()["detail"]
    assert not Job.objects.exists()


def test_the_page_and_the_api_start_the_same_import(client, api, user, project, monkeypatch):
    from webapp.jobs import dispatch

    monkeypatch.setattr(dispatch, "send", lambda *a, **k: None)  # no broker here: the row is enough
    client.force_login(user)
    page = client.post(
        f"/p/{project.slug}/import/",
        {"archive": SimpleUploadedFile("a.zip", b"PK"), "layout": "flat", "channels": " red, green ,"},
    )
    assert page.status_code == 302
    api.force_authenticate(user)
    r = api.post(
        f"/api/projects/{project.slug}/imports/",
        {"archive": SimpleUploadedFile("a.zip", b"PK"), "layout": "flat", "channels": " red, green ,"},
        format="multipart",
    )
    assert r.status_code == 202
    from webapp.ingestion.pictures import upload_dir

    options = [(upload_dir(job.pk) / "options.json").read_text() for job in Job.objects.order_by("pk")]
    assert len(options) == 2 and options[0] == options[1]
    assert '"channels": ["red", "green"]' in options[0]
