"""Resumable uploads (tus 1.0): parts in order and checked, refusals worded for biologists,
nothing half-made visible, abandoned uploads freed, finished uploads become datasets."""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.datasets.helpers import synthetic
from tests.factories import ProjectFactory, UserFactory, add_member
from webapp.datasets.models import Dataset, Upload

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def start(api, project, name: str, length: int):
    r = api.post(
        "/api/uploads/",
        **TUS,
        HTTP_UPLOAD_LENGTH=str(length),
        HTTP_UPLOAD_METADATA=f"filename {b64(name)},project {b64(project.slug)}",
    )
    return r


def patch(api, url: str, offset: int, data: bytes, checksum: str | None = "crc32"):
    headers = {**TUS, "HTTP_UPLOAD_OFFSET": str(offset)}
    if checksum == "crc32":
        headers["HTTP_UPLOAD_CHECKSUM"] = (
            "crc32 " + base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        )
    elif checksum:
        headers["HTTP_UPLOAD_CHECKSUM"] = checksum
    return api.generic("PATCH", url, data, content_type="application/offset+octet-stream", **headers)


def send(api, project, name: str, data: bytes, part: int = 1000) -> str:
    r = start(api, project, name, len(data))
    assert r.status_code == 201, r.content
    url = r["Location"]
    for off in range(0, len(data), part):
        r = patch(api, url, off, data[off : off + part])
        assert r.status_code == 204, r.content
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_it_assembles_parts_and_says_where_to_resume(api, user, project):
    api.force_authenticate(user)
    data = bytes(range(256)) * 20
    r = start(api, project, "run.ibd", len(data))
    assert r.status_code == 201 and r["Tus-Resumable"] == "1.0.0" and r["Upload-Expires"]
    url = r["Location"]
    assert patch(api, url, 0, data[:3000]).status_code == 204
    head = api.head(url, **TUS)
    assert (
        head.status_code == 200
        and head["Upload-Offset"] == "3000"
        and head["Upload-Length"] == str(len(data))
    )
    r = patch(
        api,
        url,
        3000,
        data[3000:],
        checksum="sha1 " + base64.b64encode(hashlib.sha1(data[3000:]).digest()).decode(),
    )
    assert r.status_code == 204 and r["Upload-Offset"] == str(len(data))
    info = api.get(url).json()
    assert info["complete"] and info["crc32"] == f"{zlib.crc32(data):08x}"
    upload = Upload.objects.get()
    assert upload.path.read_bytes() == data


def test_it_refuses_parts_out_of_order_twice_or_damaged_and_keeps_the_rest(api, user, project):
    api.force_authenticate(user)
    data = b"abcdefghij" * 100
    url = start(api, project, "run.ibd", len(data))["Location"]
    assert patch(api, url, 0, data[:400]).status_code == 204
    twice = patch(api, url, 0, data[:400])
    assert twice.status_code == 409 and "holds 400 bytes" in twice.json()["detail"]
    ahead = patch(api, url, 800, data[800:])
    assert ahead.status_code == 409 and "in order and once" in ahead.json()["detail"]
    damaged = data[400:800][:-1] + b"X"
    bad = patch(
        api,
        url,
        400,
        damaged,
        checksum="crc32 " + base64.b64encode(zlib.crc32(data[400:800]).to_bytes(4, "big")).decode(),
    )
    assert bad.status_code == 460 and "arrived damaged" in bad.json()["detail"]
    assert api.head(url, **TUS)["Upload-Offset"] == "400"  # the damaged part left nothing behind
    assert Upload.objects.get().path.stat().st_size == 400
    unknown = patch(api, url, 400, data[400:800], checksum="blake3 AAAA")
    assert unknown.status_code == 400 and "not supported" in unknown.json()["detail"]
    too_long = patch(api, url, 400, data[400:] + b"extra")
    assert too_long.status_code == 413 and "past its declared size" in too_long.json()["detail"]
    assert patch(api, url, 400, data[400:]).status_code == 204
    assert Upload.objects.get().path.read_bytes() == data


def test_it_refuses_another_users_upload_with_a_message(api, user, project):
    api.force_authenticate(user)
    url = start(api, project, "run.ibd", 10)["Location"]
    other = UserFactory()
    add_member(project, other, "annotator")
    api.force_authenticate(other)
    r = patch(api, url, 0, b"0123456789")
    assert r.status_code == 403 and "started by another user" in r.json()["detail"]
    assert api.head(url, **TUS).status_code == 403
    assert Upload.objects.get().offset == 0


def test_it_refuses_bad_starts_clearly(api, user, project, settings):
    api.force_authenticate(user)
    no_version = api.post(
        "/api/uploads/",
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_METADATA=f"filename {b64('a.ibd')},project {b64(project.slug)}",
    )
    assert no_version.status_code == 412
    settings.IONSIEVE_MAX_UPLOAD_BYTES = 100
    big = start(api, project, "a.ibd", 101)
    assert big.status_code == 413 and "above this server's limit" in big.json()["detail"]
    no_project = api.post(
        "/api/uploads/", **TUS, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=f"filename {b64('a.ibd')}"
    )
    assert no_project.status_code == 400 and "which project" in no_project.json()["detail"]
    viewer = UserFactory()
    add_member(project, viewer, "viewer")
    api.force_authenticate(viewer)
    assert start(api, project, "a.ibd", 10).status_code == 403
    assert not Upload.objects.exists()


def test_it_makes_a_dataset_from_finished_uploads_and_checks_them_first(
    api, user, project, tmp_path, django_capture_on_commit_callbacks
):
    api.force_authenticate(user)
    truth = synthetic(tmp_path, seed=3)
    imzml = Path(truth.imzml_path).read_bytes()
    ibd = Path(truth.imzml_path).with_suffix(".ibd").read_bytes()
    a = send(api, project, "gen.imzML", imzml, part=4000)
    b_url = start(api, project, "gen.ibd", len(ibd))["Location"]
    patch(api, b_url, 0, ibd[:1000])
    b = b_url.rstrip("/").rsplit("/", 1)[-1]
    url = f"/api/projects/{project.slug}/datasets/from-uploads/"

    cut_short = api.post(url, {"imzml": a, "ibd": b, "top": 8}, format="json")
    assert cut_short.status_code == 400 and "not complete yet" in cut_short.json()["detail"]
    patch(api, b_url, 1000, ibd[1000:])
    wrong_crc = api.post(
        url, {"imzml": a, "ibd": b, "ibd_crc32": f"{zlib.crc32(ibd) ^ 1:08x}"}, format="json"
    )
    assert wrong_crc.status_code == 400 and "does not match the file you sent" in wrong_crc.json()["detail"]
    swapped = api.post(url, {"imzml": b, "ibd": a}, format="json")
    assert swapped.status_code == 400 and "not an .imzML file" in swapped.json()["detail"]
    assert not Dataset.objects.exists() and Upload.objects.count() == 2  # nothing half-made, nothing lost

    with django_capture_on_commit_callbacks(execute=True):
        ok = api.post(
            url,
            {
                "imzml": a,
                "ibd": b,
                "imzml_crc32": f"{zlib.crc32(imzml):08x}",
                "ibd_crc32": f"{zlib.crc32(ibd):08x}",
                "top": 8,
                "name": "resumed",
            },
            format="json",
        )
    assert ok.status_code == 202, ok.content
    ds = Dataset.objects.get()
    assert ds.name == "resumed" and ds.status == Dataset.Status.READY and ds.image_count == 8
    assert ds.ibd_path.read_bytes() == ibd
    assert not Upload.objects.exists() and not list(
        (Path(ds.directory).parents[1] / "uploads").glob("*.part")
    )
    again = api.post(url, {"imzml": a, "ibd": b}, format="json")
    assert again.status_code == 400 and "does not exist" in again.json()["detail"]


def test_it_refuses_an_upload_made_for_another_project(api, user, project):
    api.force_authenticate(user)
    other = ProjectFactory(owner=user, slug="other")
    a = send(api, other, "x.imzML", b"<imzML/>")
    b = send(api, project, "x.ibd", b"1234")
    r = api.post(
        f"/api/projects/{project.slug}/datasets/from-uploads/", {"imzml": a, "ibd": b}, format="json"
    )
    assert r.status_code == 400 and "for another project" in r.json()["detail"]


def test_it_imports_a_zip_from_a_finished_upload(
    api, user, project, tmp_path, django_capture_on_commit_callbacks
):
    from tests.imagesets.helpers import make_zip, png_bytes

    api.force_authenticate(user)
    image = png_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8))
    data = make_zip(tmp_path / "gs.zip", {"ds/off/a.png": image, "ds/on/b.png": image}).read_bytes()
    a = send(api, project, "gs.zip", data, part=len(data) // 3 + 1)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(
            f"/api/projects/{project.slug}/imports/from-upload/",
            {"archive": a, "archive_crc32": f"{zlib.crc32(data):08x}"},
            format="json",
        )
    assert r.status_code == 202, r.content
    assert Dataset.objects.filter(project=project, kind=Dataset.Kind.IMAGES).exists()
    assert not Upload.objects.exists()


def test_it_frees_abandoned_uploads_after_the_set_time(api, user, project, settings, capsys):
    api.force_authenticate(user)
    url = start(api, project, "run.ibd", 100)["Location"]
    patch(api, url, 0, b"x" * 50)
    upload = Upload.objects.get()
    call_command("cleanup_uploads")
    assert upload.path.exists()  # still fresh
    Upload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("cleanup_uploads")
    assert "1 abandoned upload(s) removed" in capsys.readouterr().out
    assert not upload.path.exists() and not Upload.objects.exists()
    r = patch(api, url, 50, b"x" * 50)
    assert r.status_code == 404 and "start it again" in r.json()["detail"]


def test_it_cleans_up_periodically_in_each_worker(monkeypatch):
    import threading

    from webapp.ingestion import resumable

    calls = threading.Event()
    monkeypatch.setattr(resumable, "cleanup", lambda: calls.set() or (0, 0))
    stop = resumable.start_janitor(interval=0.05)
    try:
        assert calls.wait(5)
    finally:
        stop.set()


def sha1_header(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


def test_it_discards_a_part_whose_sha1_does_not_match_and_appends_nothing(api, user, project):
    api.force_authenticate(user)
    data = bytes(range(256)) * 8
    url = start(api, project, "run.ibd", len(data))["Location"]
    assert patch(api, url, 0, data[:1024], checksum=sha1_header(data[:1024])).status_code == 204
    flipped = data[1024:1536] + bytes([data[1536] ^ 1]) + data[1537:]
    bad = patch(api, url, 1024, flipped, checksum=sha1_header(data[1024:]))
    assert (
        bad.status_code == 460
        and "arrived damaged (its sha1 checksum does not match)" in bad.json()["detail"]
    )
    assert api.head(url, **TUS)["Upload-Offset"] == "1024"
    assert Upload.objects.get().path.read_bytes() == data[:1024]  # nothing of the bad part on disk
    md5 = "md5 " + base64.b64encode(hashlib.md5(data[1024:]).digest()).decode()
    assert patch(api, url, 1024, data[1024:], checksum=md5).status_code == 204
    upload = Upload.objects.get()
    assert upload.complete and upload.path.read_bytes() == data and upload.crc32 == zlib.crc32(data)
    options = api.options("/api/uploads/")
    assert "sha1" in options["Tus-Checksum-Algorithm"] and "checksum" in options["Tus-Extension"]


def start_announced(api, project, name: str, data: bytes, crc: int):
    return api.post(
        "/api/uploads/",
        **TUS,
        HTTP_UPLOAD_LENGTH=str(len(data)),
        HTTP_UPLOAD_METADATA=f"filename {b64(name)},project {b64(project.slug)},crc32 {b64(f'{crc:08x}')}",
    )


def test_it_checks_the_whole_file_against_the_crc32_announced_at_the_start(api, user, project, settings):
    api.force_authenticate(user)
    data = b"0123456789" * 300
    url = start_announced(api, project, "run.ibd", data, zlib.crc32(data) ^ 0xFF)["Location"]
    assert patch(api, url, 0, data[:2000]).status_code == 204
    last = patch(api, url, 2000, data[2000:])  # each part matches its own checksum, the whole does not
    assert last.status_code == 460
    assert "not the file announced when the upload started" in last.json()["detail"]
    assert "send the file again" in last.json()["detail"]
    assert api.head(url, **TUS).status_code == 404  # deleted: nothing half-made remains
    assert not Upload.objects.exists() and not list((Path(settings.MEDIA_ROOT) / "uploads").iterdir())

    good = start_announced(api, project, "run.ibd", data, zlib.crc32(data))["Location"]
    assert patch(api, good, 0, data[:2000]).status_code == 204
    ok = patch(api, good, 2000, data[2000:])
    assert ok.status_code == 204 and ok["Upload-Offset"] == str(len(data))
    assert Upload.objects.get().path.read_bytes() == data

    unreadable = api.post(
        "/api/uploads/",
        **TUS,
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_METADATA=f"filename {b64('a.ibd')},project {b64(project.slug)},crc32 {b64('xyz')}",
    )
    assert unreadable.status_code == 400 and "is not a CRC-32" in unreadable.json()["detail"]
    assert Upload.objects.count() == 1


def test_it_refuses_an_imzml_with_an_ibd_that_is_not_its_own_before_making_a_dataset(
    api, user, project, tmp_path
):
    api.force_authenticate(user)
    one = synthetic(tmp_path, name="one", seed=3)
    other = synthetic(tmp_path, name="other", seed=4)
    imzml = send(api, project, "one.imzML", Path(one.imzml_path).read_bytes(), part=4000)
    foreign = send(
        api, project, "other.ibd", Path(other.imzml_path).with_suffix(".ibd").read_bytes(), part=8000
    )
    ibd_bytes = Path(one.imzml_path).with_suffix(".ibd").read_bytes()
    cut = send(api, project, "one.ibd", ibd_bytes[: len(ibd_bytes) // 2], part=8000)
    url = f"/api/projects/{project.slug}/datasets/from-uploads/"

    r = api.post(url, {"imzml": imzml, "ibd": foreign, "top": 4}, format="json")
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert (
        "cannot be read together" in detail and "UUIDs differ" in detail and "No dataset was made" in detail
    )
    r = api.post(url, {"imzml": imzml, "ibd": cut, "top": 4}, format="json")
    assert r.status_code == 400 and "truncated" in r.json()["detail"]
    assert not Dataset.objects.exists() and Upload.objects.count() == 3  # nothing made, nothing lost


def test_it_keeps_nothing_of_a_part_the_disk_could_not_take(api, user, project, monkeypatch):
    import errno

    from webapp.ingestion import resumable

    api.force_authenticate(user)
    data = bytes(range(256)) * 64
    url = start(api, project, "run.ibd", len(data))["Location"]
    assert patch(api, url, 0, data[:4096], checksum=None).status_code == 204
    calls = []

    def full(self, block):
        calls.append(len(block))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(resumable._Sink, "_write", full)
    r = patch(api, url, 4096, data[4096:], checksum=None)  # no checksum: tus would keep what arrived
    assert calls and r.status_code == 507 and "No space left on device" in r.json()["detail"]
    assert api.head(url, **TUS)["Upload-Offset"] == "4096"
    assert Upload.objects.get().path.read_bytes() == data[:4096]


def test_it_combines_crc32s_as_zlib_would():
    from ionsieve_client.resumable import crc32_combine

    rng = np.random.default_rng(0)
    for la, lb in [(0, 0), (3, 0), (0, 5), (1000, 12345), (7, 1 << 20)]:
        a, b = rng.bytes(la), rng.bytes(lb)
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_it_keeps_the_running_crc32_with_parts_checked_by_crc32_or_sha1(api, user, project):
    api.force_authenticate(user)
    data = bytes(range(256)) * 40
    url = start(api, project, "run.ibd", len(data))["Location"]
    assert patch(api, url, 0, data[:3000]).status_code == 204  # CRC-32: combined, not hashed twice
    assert patch(api, url, 3000, data[3000:7000], checksum=sha1_header(data[3000:7000])).status_code == 204
    assert patch(api, url, 7000, data[7000:]).status_code == 204
    assert api.get(url).json()["crc32"] == f"{zlib.crc32(data):08x}"
