"""Resumable upload (tus 1.0) on loopback: throughput, and resume after a cut mid-file.

    python bench/bench_upload.py [--mb 1024 --part-mb 64]

Starts gunicorn (deploy/gunicorn.conf.py's gthread worker) on 127.0.0.1 with a fresh SQLite
database, then with the Python client (ionsieve_client, standard library only):

  throughput   one file of --mb MB in parts of --part-mb MB, each with its SHA-1 checked by
               the server (tus checksum extension; again with CRC-32 parts, the cheaper
               choice), the server's running CRC-32 of the assembled file compared at the end; compared in the same run with the one-request multipart upload the API
               kept (POST /api/projects/{slug}/datasets/ needs an .imzML pair: timed as the
               raw transfer of the same bytes to Django's multipart parser) and with a plain
               copy of the file on this disk (the floor)
  resume       the same file cut mid-part (half of part 3 sent, then the socket closed), then
               resumed by a new client (a new run of a script); bytes sent twice are counted

Prints figures and ratios (target >= 200 MB/s; resent bytes <= one part). Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ionsieve_client import ResumableUpload  # noqa: E402
from tests.client.cut_upload import CutOnce  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=1024, help="file size in MB (10^6 bytes)")
    ap.add_argument("--part-mb", type=int, default=64, help="part size in MiB")
    ap.add_argument("--runs", type=int, default=3, help="runs of each upload (median kept)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ionsieve_bench_upload_"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        IONSIEVE_MAX_UPLOAD_BYTES=str(1 << 40),
        DJANGO_SETTINGS_MODULE="webapp.settings",
        PYTHONPATH=str(ROOT),
    )
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    token = subprocess.run(
        [
            py,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model as g\n"
            "from rest_framework.authtoken.models import Token\n"
            "from webapp.projects.services import create_project\n"
            "u = g().objects.create_user('bench', password='x')\n"
            "create_project(u, 'bench', slug='bench')\n"
            "print(Token.objects.create(user=u).key)",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]

    print(f"writing a {a.mb} MB file ...", flush=True)
    data_path = tmp / "run.ibd"
    block = os.urandom(1 << 20)
    with open(data_path, "wb") as f:
        for i in range(a.mb * 10**6 // len(block)):
            f.write(block[i % 7 :] + block[: i % 7])  # not one repeated block: CRC-32 sees every byte
    size = data_path.stat().st_size
    t0 = time.perf_counter()
    shutil.copyfile(data_path, tmp / "copy.bin")
    copy_s = time.perf_counter() - t0
    (tmp / "copy.bin").unlink()

    server = subprocess.Popen(
        [
            str(Path(py).with_name("gunicorn")),
            "-c",
            "deploy/gunicorn.conf.py",
            "--access-logfile",
            "/dev/null",
            "--error-logfile",
            str(tmp / "gunicorn.log"),
            "webapp.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/accounts/login/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            sys.exit("bench_upload: gunicorn did not start (see its log)")
        part = a.part_mb << 20

        boundary = "benchboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; filename="run.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body():
            yield head
            with open(data_path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
            yield tail

        def resumable(checksum: str = "sha1") -> float:
            up = ResumableUpload(
                base, token, "bench", data_path, part_size=part, state=tmp / "state.json", checksum=checksum
            )
            t0 = time.perf_counter()
            result = up.run()
            took = time.perf_counter() - t0
            assert result["crc32"] == expected_crc
            return took

        def multipart() -> float:
            req = urllib.request.Request(
                base + "/api/projects/bench/imports/",
                data=body(),
                method="POST",
                headers={
                    "Authorization": f"Token {token}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + size + len(tail)),
                },
            )
            t0 = time.perf_counter()
            try:
                urllib.request.urlopen(req, timeout=600).read()
            except urllib.error.HTTPError as exc:
                exc.read()  # not a real zip: refused after the whole body was parsed, which is what is timed
            return time.perf_counter() - t0

        expected_crc = f"{zlib.crc32(data_path.read_bytes()):08x}"
        print(f"resumable and one-request multipart uploads, alternating, {a.runs} runs each ...", flush=True)
        tus_runs, crc_runs, mp_runs = [], [], []
        for i in range(a.runs):  # alternating: a busy moment of a shared machine hits all alike
            # Each timed upload starts with the previous one's gigabyte written out (sync): otherwise
            # its writeback slows whichever upload comes next. The order turns for the same reason.
            kinds = [("sha1", tus_runs), ("crc32", crc_runs), ("multipart", mp_runs)]
            for kind, times in kinds[i % 3 :] + kinds[: i % 3]:
                os.sync()
                times.append(multipart() if kind == "multipart" else resumable(kind))
        tus_s, multipart_s = sorted(tus_runs)[a.runs // 2], sorted(mp_runs)[a.runs // 2]
        crc_s = sorted(crc_runs)[a.runs // 2]
        result = {"crc32": expected_crc}

        print("cut mid-part, then resumed by a new client ...", flush=True)
        state = tmp / "state2.json"
        cut = CutOnce(base, token, "bench", data_path, part_size=part, state=state, retries=0)
        cut.cut_at = 3
        with contextlib.suppress(ConnectionResetError):
            cut.run()
        time.sleep(0.5)  # the server notices the cut and discards the half part
        resumed = ResumableUpload(base, token, "bench", data_path, part_size=part, state=state)
        t0 = time.perf_counter()
        r2 = resumed.run()
        resume_s = time.perf_counter() - t0
        assert r2["crc32"] == result["crc32"]
        sent = cut.bytes_sent + resumed.bytes_sent
        resent = sent - size
    finally:
        server.terminate()
        server.wait(timeout=30)
    mb = size / 1e6
    print()
    print(
        f"{mb:,.0f} MB file, parts of {a.part_mb} MiB, gunicorn gthread on 127.0.0.1; {os.cpu_count()} cores"
    )
    print(
        f"  (medians of {a.runs}; resumable runs: {', '.join(f'{mb / t:.0f}' for t in tus_runs)} MB/s; "
        f"with CRC-32 parts: {', '.join(f'{mb / t:.0f}' for t in crc_runs)} MB/s; "
        f"multipart: {', '.join(f'{mb / t:.0f}' for t in mp_runs)} MB/s; "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"  resumable (tus, SHA-1 per part, CRC-32 of the whole) {tus_s:6.2f} s  {mb / tus_s:7.0f} MB/s   (target >= 200)"
    )
    print(f"  resumable (tus, CRC-32 per part and of the whole)    {crc_s:6.2f} s  {mb / crc_s:7.0f} MB/s")
    print(
        f"  one-request multipart (Django's parser)              {multipart_s:6.2f} s  {mb / multipart_s:7.0f} MB/s"
    )
    print(f"  plain copy on this disk (floor)                      {copy_s:6.2f} s  {mb / copy_s:7.0f} MB/s")
    print(
        f"  resumed after the cut: {resumed.bytes_sent / 1e6:,.0f} MB in {resume_s:.2f} s; "
        f"bytes sent twice: {resent / 1e6:.1f} MB = {resent / part:.2f} of the part in flight "
        f"({part / 1e6:.0f} MB)   (target <= 1 part)"
    )
    print()
    print(
        f"resumable / multipart throughput = {multipart_s / tus_s:.2f}x (CRC-32 parts: {multipart_s / crc_s:.2f}x)"
    )
    print(f"resumable / plain copy           = {copy_s / tus_s:.2f}x")
    if resent > part:
        sys.exit("bench_upload: more than the part in flight was sent twice")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
