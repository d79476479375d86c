"""Hostile and broken input: a corpus of malformed files made here, each through the upload API
(and the command line where it applies). Every one gets a clear answer - refused at upload
(400 with a sentence) or a failed job with a sentence, never an internal error - and nothing
else in the project changes. The integration variant sends some through a real worker and
checks that the worker survives them.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tests.datasets.helpers import synthetic
from tests.gallery_data import make_ready_dataset
from tests.integration.conftest import worker  # noqa: F401 - the real-worker fixture, for the integration test
from tests.reliability.conftest import make_world

INTERNAL = "internal error"


@dataclass
class Case:
    name: str
    imzml: tuple[str, bytes] | None
    ibd: tuple[str, bytes] | None
    mz_list: tuple[str, bytes] | None = None
    data: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    # Words the user-facing error must contain (lower case), any of them.
    says: tuple[str, ...] = ()
    cli: bool = True
    may_succeed: bool = False  # e.g. a few NaN intensities are cleaned up, not refused
    # Also checked against the reader directly by test_it_refuses_entity_declarations_anywhere_in_the_header.
    hidden_doctype: bool = False


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def with_doctype(xml: bytes, doctype: bytes, before: bytes = b"") -> bytes:
    decl_end = xml.index(b"?>") + 2 if xml.startswith(b"<?xml") else 0
    return xml[:decl_end] + before + doctype + xml[decl_end:]


BILLION_LAUGHS = (
    b'<!DOCTYPE mzML [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%s;" % (str(i - 1).encode() if i > 1 else b"")) * 10)
        for i in range(1, 10)
    )
    + b"]>"
)
XXE = b'<!DOCTYPE mzML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def set_first_position(xml: bytes, accession: str, value: int) -> bytes:
    pattern = re.compile(rb'(accession="' + accession.encode() + rb'"[^>]*?value=")\d+(")')
    out, n = pattern.subn(lambda m: m.group(1) + str(value).encode() + m.group(2), xml, count=1)
    assert n == 1, accession
    return out


def corpus(tmp: Path) -> list[Case]:
    good = synthetic(tmp, "good", seed=11)
    other = synthetic(tmp, "other", seed=12)
    xml, ibd = Path(good.imzml_path).read_bytes(), Path(good.ibd_path).read_bytes()
    zeros = synthetic(tmp, "zeros", seed=13)
    zero_ibd = bytearray(Path(zeros.ibd_path).read_bytes())
    zero_ibd[16:] = bytes(len(zero_ibd) - 16)  # keep the UUID, zero every m/z and intensity
    bad_values = synthetic(tmp, "nan", seed=14, n_bad_intensities=40)
    no_spectra = re.sub(
        rb"<spectrumList[^>]*>.*</spectrumList>", b'<spectrumList count="0"></spectrumList>', xml, flags=re.S
    )
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as z:
        z.writestr("../../evil.imzML", xml[:2000])
    junk = np.random.default_rng(0).bytes(50_000)
    return [
        Case("truncated ibd", ("a.imzML", xml), ("a.ibd", ibd[: len(ibd) // 2]), says=("truncated",)),
        Case(
            "mismatched pair",
            ("a.imzML", xml),
            ("b.ibd", Path(other.ibd_path).read_bytes()),
            says=("belong", "uuid"),
        ),
        Case(
            "oversized",
            ("a.imzML", xml),
            ("a.ibd", ibd),
            settings={"IONSIEVE_MAX_UPLOAD_BYTES": 10_000},
            says=("limit",),
        ),
        Case(
            "png renamed .imzML", ("photo.imzML", png_header(64, 64)), ("photo.ibd", ibd), says=("not xml",)
        ),
        Case(
            "billion laughs", ("a.imzML", with_doctype(xml, BILLION_LAUGHS)), ("a.ibd", ibd), says=("entity",)
        ),
        Case(
            "external entity",
            ("a.imzML", with_doctype(xml, XXE).replace(b"<mzML", b"<!-- &xxe; --><mzML", 1)),
            ("a.ibd", ibd),
            says=("entity",),
        ),
        Case(
            "doctype behind a fake root in a comment",
            ("a.imzML", with_doctype(xml, XXE, b"<!-- <mzML -->")),
            ("a.ibd", ibd),
            says=("entity", "xml", "imzml"),
            hidden_doctype=True,
        ),
        Case(
            "doctype after 1.5 MB of comment",
            ("a.imzML", with_doctype(xml, BILLION_LAUGHS, b"<!--" + b"x" * 1_500_000 + b"-->")),
            ("a.ibd", ibd),
            says=("entity", "xml", "imzml"),
            hidden_doctype=True,
        ),
        Case("zip slip renamed .imzML", ("a.imzML", zip_buf.getvalue()), ("a.ibd", ibd), says=("not xml",)),
        Case(
            "png header claiming 100k x 100k",
            ("huge.imzML", png_header(100_000, 100_000)),
            ("huge.ibd", ibd),
            says=("not xml",),
        ),
        Case("random bytes", ("junk.imzML", junk), ("junk.ibd", junk), says=("not xml",)),
        Case(
            "xml that is not imzML",
            ("a.imzML", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'),
            ("a.ibd", ibd),
            says=("not imzml",),
        ),
        Case("zero spectra", ("a.imzML", no_spectra), ("a.ibd", ibd), says=("no spectra",)),
        Case(
            "absurd grid",
            ("a.imzML", set_first_position(xml, "IMS:1000050", 9_000_000)),
            ("a.ibd", ibd),
            settings={"IONSIEVE_MAX_PIXELS": 1_000_000},
            says=("too large",),
        ),
        Case(
            "empty files",
            ("a.imzML", b""),
            ("a.ibd", b""),
            says=("not xml", "empty", "submitted file is empty"),
        ),
        Case(".ibd without .imzML", None, ("a.ibd", ibd), says=("imzml", "required"), cli=False),
        Case(".imzML without .ibd", ("a.imzML", xml), None, says=(".ibd",)),
        Case("wrong extensions", ("a.txt", xml), ("a.bin", ibd), says=("not an .imzml",)),
        Case(
            "all intensities zero",
            ("z.imzML", Path(zeros.imzml_path).read_bytes()),
            ("z.ibd", bytes(zero_ibd)),
            says=("no peaks", "zero", "m/z"),
        ),
        Case(
            "negative and NaN intensities",
            ("n.imzML", Path(bad_values.imzml_path).read_bytes()),
            ("n.ibd", Path(bad_values.ibd_path).read_bytes()),
            may_succeed=True,
        ),
        Case(
            "non-UTF-8 m/z list",
            ("a.imzML", xml),
            ("a.ibd", ibd),
            mz_list=("l.csv", "mz,name\n200.0,caf\xe9\xff\xfe\n".encode("latin-1")),
            says=("m/z", "csv", "utf"),
            may_succeed=True,
        ),
        Case(
            "m/z list of garbage",
            ("a.imzML", xml),
            ("a.ibd", ibd),
            mz_list=("l.csv", b"mz,name\nfoo,bar\nNaN,x\n-inf,y\n\x00\x01,z\n"),
            says=("m/z",),
        ),
        Case(
            "m/z list out of range",
            ("a.imzML", xml),
            ("a.ibd", ibd),
            mz_list=("l.csv", b"mz\n1.0\n2.0\n99999\n"),
            says=("range", "m/z"),
        ),
    ]


def counts(project) -> dict:
    from classifier.models import Prediction
    from webapp.datasets.models import Dataset, IonImage, Label
    from webapp.projects.models import Membership

    return {
        "ready datasets": list(
            Dataset.objects.filter(project=project, status="ready").values_list("pk", "revision")
        ),
        "images": IonImage.objects.filter(dataset__project=project).count(),
        "labels": list(Label.objects.filter(image__dataset__project=project).values_list("pk", "value")),
        "predictions": Prediction.objects.filter(image__dataset__project=project).count(),
        "members": Membership.objects.filter(project=project).count(),
    }


def files(case: Case) -> dict:
    out = dict(case.data)
    for key in ("imzml", "ibd", "mz_list"):
        item = getattr(case, key)
        if item is not None:
            out[key] = SimpleUploadedFile(item[0], item[1])
    out.setdefault("top", 6)
    return out


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


def test_it_answers_every_hostile_upload_clearly(  # noqa: C901, PLR0915 - one table of hostile inputs
    db, settings, hostile_dir, django_capture_on_commit_callbacks
):
    from webapp.datasets.models import Dataset, IonImage
    from webapp.jobs.models import Job

    w = make_world()
    project = w.project
    from webapp.datasets.labels import set_labels

    set_labels(project, list(w.dataset.images.all()[:3]), w.users["annotator"], project.classes[0])
    api = APIClient()
    api.force_login(w.users["owner"])
    cases = corpus(hostile_dir)
    assert len(cases) >= 15
    problems = []
    for case in cases:
        old = {key: getattr(settings, key) for key in case.settings}
        for key, value in case.settings.items():
            setattr(settings, key, value)
        before = counts(project)
        with django_capture_on_commit_callbacks(execute=True):
            r = api.post(f"/api/projects/{project.slug}/datasets/", files(case), format="multipart")
        for key, value in old.items():
            setattr(settings, key, value)
        if r.status_code == 400:
            text = str(r.json()).lower()
            if case.says and not any(s in text for s in case.says):
                problems.append(f"{case.name}: refused, but the message does not say why: {text}")
            if Dataset.objects.filter(project=project).exclude(status="ready").exists():
                problems.append(f"{case.name}: a refused upload left a dataset row")
        elif r.status_code == 202:
            ds = Dataset.objects.get(pk=r.json()["id"])
            job = Job.objects.filter(kind="ingest", target_id=ds.pk).first()
            if ds.status == "ready" and case.may_succeed:
                ds_images = IonImage.objects.filter(dataset=ds).count()
                if ds_images != ds.image_count or ds_images == 0:
                    problems.append(f"{case.name}: ready with {ds_images} rows for {ds.image_count} images")
                from webapp.datasets.storage import delete_dataset

                delete_dataset(ds)
                continue
            error = (job.error if job else "") or ds.error
            if job is None or job.status != "failed" or ds.status != "failed":
                problems.append(
                    f"{case.name}: accepted and ended {ds.status}/{job and job.status}, not failed"
                )
            elif INTERNAL in error.lower() or "traceback" in error.lower():
                problems.append(f"{case.name}: internal error shown: {error}")
            elif case.says and not any(s in error.lower() for s in case.says):
                problems.append(f"{case.name}: failed, but the error does not say why: {error}")
            if "root:" in error or "root:" in str(ds.metadata):
                problems.append(f"{case.name}: /etc/passwd content leaked")
            if IonImage.objects.filter(dataset=ds).exists():
                problems.append(f"{case.name}: a failed dataset kept image rows")
            from webapp.datasets.storage import delete_dataset

            delete_dataset(ds)
        else:
            problems.append(f"{case.name}: answered {r.status_code}: {r.content[:200]!r}")
        if counts(project) != before:
            problems.append(f"{case.name}: the rest of the project changed")
    assert not problems, "\n".join(problems)


def test_it_answers_every_hostile_file_on_the_command_line(db, settings, hostile_dir, tmp_path):
    from webapp.datasets.models import Dataset

    w = make_world()
    problems = []
    for case in corpus(hostile_dir):
        if not case.cli or case.imzml is None:
            continue
        folder = tmp_path / re.sub(r"\W+", "-", case.name)
        folder.mkdir()
        stem = folder / Path(case.imzml[0]).stem
        imzml = stem.with_suffix(Path(case.imzml[0]).suffix)
        imzml.write_bytes(case.imzml[1])
        if case.ibd is not None:
            stem.with_suffix(".ibd").write_bytes(case.ibd[1])
        kwargs = {"project": w.project.slug, "top": 6}
        if case.mz_list is not None:
            (folder / "list.csv").write_bytes(case.mz_list[1])
            kwargs["mz_list"] = str(folder / "list.csv")
        old = {key: getattr(settings, key) for key in case.settings}
        for key, value in case.settings.items():
            setattr(settings, key, value)
        before = Dataset.objects.count()
        try:
            call_command("import_imzml", str(imzml), **kwargs, stdout=io.StringIO(), stderr=io.StringIO())
        except CommandError as exc:
            message = str(exc)
            if "\n" in message.strip() or (case.says and not any(s in message.lower() for s in case.says)):
                problems.append(f"{case.name}: unclear message {message!r}")
            if Dataset.objects.count() != before:
                problems.append(f"{case.name}: a failed import left a dataset")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{case.name}: {type(exc).__name__}: {exc}")
        else:
            if not case.may_succeed:
                problems.append(f"{case.name}: imported without complaint")
        finally:
            for key, value in old.items():
                setattr(settings, key, value)
    assert not problems, "\n".join(problems)


def test_it_refuses_entity_declarations_anywhere_in_the_header(hostile_dir):
    from ionsieve_core.msi import MSIError, read_metadata

    refused = []
    for case in corpus(hostile_dir):
        if not case.hidden_doctype:
            continue
        folder = hostile_dir / re.sub(r"\W+", "-", case.name)
        folder.mkdir(exist_ok=True)
        (folder / "x.imzML").write_bytes(case.imzml[1])
        (folder / "x.ibd").write_bytes(case.ibd[1])
        try:
            read_metadata(folder / "x.imzML", folder / "x.ibd")
        except MSIError as exc:
            refused.append("entit" in str(exc).lower())
        else:
            refused.append(False)
    assert refused and all(refused)


# ---------------------------------------------------------------- image archives (ionsieve_core.imagesets)
def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def real_png(seed: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (16, 16), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def archive_corpus() -> list[tuple[str, bytes]]:
    return [
        (
            "zip slip",
            zip_bytes({"off/a.png": real_png(), "../../../../tmp/ionsieve-zip-slip.png": real_png(1)}),
        ),
        ("absolute path", zip_bytes({"off/a.png": real_png(), "/tmp/ionsieve-absolute.png": real_png(1)})),
        ("zip bomb", zip_bytes({"off/bomb.png": b"\x00" * (300 << 20)})),
        (
            "png claiming 100k x 100k",
            zip_bytes({"off/huge.png": png_header(100_000, 100_000), "on/b.png": real_png()}),
        ),
        ("not a zip", b"PK\x03\x04 this is not really a zip"),
        ("empty zip", zip_bytes({})),
        ("text files only", zip_bytes({"off/readme.txt": b"hello"})),
    ]


def test_it_refuses_hostile_image_archives(db, django_capture_on_commit_callbacks, tmp_path):
    pytest.importorskip(
        "ionsieve_core.imagesets",
        reason="ionsieve_core.imagesets (the image collection reader) is not written yet",
    )
    from webapp.datasets.models import Dataset
    from webapp.jobs.models import Job

    w = make_world()
    api = APIClient()
    api.force_login(w.users["owner"])
    before = counts(w.project)
    problems = []
    for name, data in archive_corpus():
        with django_capture_on_commit_callbacks(execute=True):
            r = api.post(
                f"/api/projects/{w.project.slug}/imports/",
                {"archive": SimpleUploadedFile("images.zip", data)},
                format="multipart",
            )
        if r.status_code == 202:
            job = Job.objects.get(pk=r.json()["job"])
            if job.status != "failed":
                problems.append(f"{name}: import ended {job.status}")
            elif INTERNAL in job.error.lower():
                problems.append(f"{name}: internal error: {job.error}")
        elif r.status_code != 400:
            problems.append(f"{name}: answered {r.status_code}")
        if counts(w.project) != before or Dataset.objects.filter(project=w.project).count() != 1:
            problems.append(f"{name}: the project changed")
    assert not Path("/tmp/ionsieve-zip-slip.png").exists() and not Path("/tmp/ionsieve-absolute.png").exists()
    assert not any(p.name.startswith("ionsieve-") for p in tmp_path.parent.rglob("ionsieve-*.png"))
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- through a real worker
@pytest.mark.integration
def test_it_keeps_the_worker_alive_through_hostile_files(worker, tmp_path):  # noqa: F811
    from django.db import transaction

    from tests.factories import ProjectFactory, UserFactory
    from tests.integration.conftest import wait_for
    from webapp.datasets.models import Dataset, IonImage
    from webapp.ingestion import services
    from webapp.jobs.models import Job

    user = UserFactory()
    project = ProjectFactory(owner=user)
    ready = make_ready_dataset(project, n=10)
    chosen = {
        "truncated ibd",
        "mismatched pair",
        "billion laughs",
        "external entity",
        "all intensities zero",
        "m/z list of garbage",
    }
    jobs = []
    for case in corpus(tmp_path):
        if case.name not in chosen:
            continue
        folder = tmp_path / re.sub(r"\W+", "-", case.name)
        folder.mkdir()
        (folder / "x.imzML").write_bytes(case.imzml[1])
        (folder / "x.ibd").write_bytes(case.ibd[1])
        mz = None
        if case.mz_list:
            mz = folder / "l.csv"
            mz.write_bytes(case.mz_list[1])
        with transaction.atomic():
            ds = services.create_imzml_dataset(
                project,
                user,
                name=case.name,
                imzml=folder / "x.imzML",
                ibd=folder / "x.ibd",
                mz_list=mz,
                top=6,
            )
            jobs.append((case, services.start_ingestion(ds, user)))
    good = synthetic(tmp_path, "fine", seed=21)
    with transaction.atomic():
        fine = services.create_imzml_dataset(
            project, user, name="fine", imzml=Path(good.imzml_path), ibd=Path(good.ibd_path), top=6
        )
        last = services.start_ingestion(fine, user)
    worker.start(queues="ingest")
    wait_for(
        lambda: Job.objects.get(pk=last.pk).status in ("done", "failed"),
        timeout=120,
        what="all jobs",
        worker=worker,
    )
    for case, job in jobs:
        job.refresh_from_db()
        assert job.status == "failed", (case.name, job.status)
        assert INTERNAL not in job.error.lower() and job.error, (case.name, job.error)
        assert not IonImage.objects.filter(dataset_id=job.target_id).exists(), case.name
    assert Job.objects.get(pk=last.pk).status == "done", worker.log()
    assert worker.proc.poll() is None, "the worker died"
    assert Dataset.objects.get(pk=fine.pk).image_count > 0
    assert IonImage.objects.filter(dataset=ready).count() == 10
