"""The Python client's resumable upload against a live server: a connection cut mid-part and a
new run of the script resume where the server stopped, resending only the part in flight."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from ionsieve_client import IonSieve, ResumableUpload, UploadFailed
from tests.client.cut_upload import CutOnce
from tests.datasets.helpers import synthetic
from tests.factories import ProjectFactory, UserFactory
from webapp.datasets.models import Dataset, Upload

pytestmark = pytest.mark.django_db(transaction=True)
PART = 64 * 1024


@pytest.fixture
def ion(live_server):
    owner = UserFactory(username="paula")
    ProjectFactory(owner=owner, name="Colon", slug="colon")
    return IonSieve(live_server.url, Token.objects.create(user=owner).key)


def test_it_resumes_after_a_cut_in_a_new_run_without_resending_what_the_server_has(ion, tmp_path):
    data = bytes(range(256)) * (PART * 5 // 256 + 100)  # 5 parts and a bit
    path = tmp_path / "run.ibd"
    path.write_bytes(data)
    state = tmp_path / "state.json"
    first = CutOnce(ion.base, ion.token, "colon", path, part_size=PART, state=state, retries=0)
    with pytest.raises(ConnectionResetError):
        first.run()
    held = Upload.objects.get().offset
    assert held == 2 * PART  # the half part in flight was discarded, not kept damaged

    second = ResumableUpload(ion.base, ion.token, "colon", path, part_size=PART, state=state)
    result = second.run()
    assert second.bytes_sent == len(data) - held  # nothing sent twice beyond the part in flight
    assert result["crc32"] == f"{zlib.crc32(data):08x}"
    upload = Upload.objects.get()
    assert upload.complete and upload.path.read_bytes() == data
    assert "colon" not in state.read_text()  # finished: forgotten


def test_it_uploads_an_imzml_pair_resumably_and_processes_it(ion, tmp_path):
    truth = synthetic(tmp_path, seed=8)
    imzml = Path(truth.imzml_path)
    seen: list[tuple[int, int]] = []
    ds = ion.upload_imzml_resumable(
        "colon",
        imzml,
        imzml.with_suffix(".ibd"),
        name="in parts",
        top=6,
        progress=lambda sent, total, rate: seen.append((sent, total)),
        state=tmp_path / "state.json",
    )
    ds = ion.wait_for_dataset(ds["id"], timeout=300, poll=0.2)
    assert ds["status"] == "ready" and ds["image_count"] == 6 and ds["name"] == "in parts"
    assert seen and seen[-1][0] == seen[-1][1]
    assert Dataset.objects.get().ibd_path.read_bytes() == imzml.with_suffix(".ibd").read_bytes()
    assert not Upload.objects.exists()


def test_it_refuses_a_file_above_the_limit_with_the_servers_reason(ion, tmp_path, settings):
    settings.IONSIEVE_MAX_UPLOAD_BYTES = 10
    path = tmp_path / "big.ibd"
    path.write_bytes(b"x" * 11)
    with pytest.raises(UploadFailed) as err:
        ion.upload_file("colon", path, state=tmp_path / "s.json")
    assert err.value.status == 413 and "above this server's limit" in err.value.detail


def test_it_sends_a_sha1_with_every_part(ion, tmp_path, monkeypatch):
    from webapp.ingestion import resumable

    seen: list[str] = []
    parse = resumable.Checksum.parse

    def spy(header):
        seen.append(header.split()[0] if header else "")
        return parse(header)

    monkeypatch.setattr(resumable.Checksum, "parse", staticmethod(spy))
    data = bytes(range(256)) * (PART * 3 // 256)
    path = tmp_path / "run.ibd"
    path.write_bytes(data)
    result = ion.upload_file("colon", path, part_size=PART, state=tmp_path / "s.json")
    assert seen == ["sha1"] * 3
    assert result["crc32"] == f"{zlib.crc32(data):08x}"
    assert Upload.objects.get().path.read_bytes() == data


def test_it_can_check_parts_by_crc32_instead(ion, tmp_path):
    data = bytes(range(256)) * (PART * 2 // 256 + 77)  # 2 parts and a bit
    path = tmp_path / "run.ibd"
    path.write_bytes(data)
    up = ResumableUpload(
        ion.base, ion.token, "colon", path, part_size=PART, state=tmp_path / "s.json", checksum="crc32"
    )
    result = up.run()
    assert result["crc32"] == f"{zlib.crc32(data):08x}"  # the running CRC-32 combined part by part
    upload = Upload.objects.get()
    assert upload.path.read_bytes() == data and f"{upload.crc32:08x}" == result["crc32"]
    with pytest.raises(ValueError):
        ResumableUpload(ion.base, ion.token, "colon", path, checksum="md4")
