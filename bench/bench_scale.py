"""Time to a sorted gallery at real sizes: `import_imzml` of 100,000 and 1,000,000 pixels.

    python bench/bench_scale.py [--size 100k] [--size 1m] [--db sqlite,postgres]

Sizes (processed centroid files from `ionsieve_core.msi.synthetic`, 64-bit m/z, 32-bit
intensities, interleaved; the m/z list = the 40 generated ions + m/z values found in the data):

  100k   250 x 400 = 100,000 pixels, 500 ions, ~200 noise peaks per spectrum (default)
  1m     1,000 x 1,000 = 1,000,000 pixels, 1,000 ions, ~200 noise peaks per spectrum (4 GB of
         output; asked with --size 1m: 8-10 min for both databases on 2 cores, ~4 GB of /tmp for
         the files (hard-linked into the dataset folder: same disk) + 4 GB for the array, ~8 GB
         peak RSS)

For each size, in fresh processes:

  extraction alone   ionsieve_core.msi read_metadata + extract into memory, no Django (the
                     reference of the "whole path <= 3x the extraction alone" target); median
                     of 3 runs (1 at 1m)
  Django start       `manage.py import_imzml` of a missing file: interpreter, Django, the command
  whole path         per database (the embedded SQLite file and PostgreSQL on 127.0.0.1:5432,
                     database `ionsieve_bench_scale`, created and dropped here), on a fresh
                     database: `manage.py import_imzml --mz-list` start to exit, then the
                     gallery's first API page sorted by score, asked in a process where Django
                     is already up (as a running server is); "upload complete -> every image
                     scored and visible" = the two together
  stages             while the command runs, its database is read every 20 ms (the dataset's
                     progress and status, its image rows and how many hold a score), which
                     times: start -> ingestion begins (Django, the files linked or copied into
                     the dataset folder), metadata + extraction, thumbnails, image rows, scoring
  peak memory        the import process's peak RSS (wait4's ru_maxrss; mapped file pages
                     included), target <= output array + 300 MiB

Generated files live in a temporary folder removed at the end. Exits 1 when PostgreSQL is
asked for and not reachable, or when a gallery is not sorted by score with every image scored;
a target missed is printed, not an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PPM = 3.0
SLUG = "bench"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DB = "ionsieve_bench_scale"
SIZES = {  # name: (height, width, ions, noise peaks per spectrum)
    "100k": (250, 400, 500, 200),
    "1m": (1000, 1000, 1000, 200),
}
MIB = 1024 * 1024


# ---- workers (fresh processes) -----------------------------------------------------------------
def work_extract(imzml: str, mzs_path: str) -> dict:
    """read_metadata + extract, timed from after the imports (the library's own work)."""
    from ionsieve_core.msi import extract, read_metadata

    mzs = np.load(mzs_path)
    t0 = time.perf_counter()
    meta = read_metadata(imzml)
    t1 = time.perf_counter()
    result = extract(meta, mzs, ppm=PPM)
    t2 = time.perf_counter()
    return {
        "metadata_s": t1 - t0,
        "extract_s": t2 - t1,
        "total_s": t2 - t0,
        "output_bytes": int(result.images.nbytes),
        "peak_rss_mb": _vm_hwm_mb(),
    }


def work_gallery() -> dict:
    """The gallery's first page sorted by score, in a process with Django already up."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from webapp.datasets.models import Dataset, IonImage

    ds = Dataset.objects.get()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench"))
    client.get("/api/projects/")  # a running server has its URL modules imported: warm up
    t0 = time.perf_counter()
    resp = client.get(f"/api/datasets/{ds.pk}/images/", {"ordering": "-probability"})
    dt = time.perf_counter() - t0
    probs = [r["probability"] for r in resp.json()["results"]] if resp.status_code == 200 else []
    unscored = IonImage.objects.filter(dataset=ds, probability__isnull=True).count()
    return {
        "status": resp.status_code,
        "gallery_s": dt,
        "page": len(probs),
        "images": ds.images.count(),
        "unscored": unscored,
        "sorted": bool(probs) and None not in probs and probs == sorted(probs, reverse=True),
        "body": "" if resp.status_code == 200 else resp.content[:300].decode(errors="replace"),
    }


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---- sites ---------------------------------------------------------------------------------------
def _env(database_url: str, media: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(
        DATABASE_URL=database_url,
        MEDIA_ROOT=str(media),
        DJANGO_SETTINGS_MODULE="webapp.settings",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=str(ROOT),
        AXES_ENABLED="0",
    )
    return env


def _manage(env: dict, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=capture,
        text=True,
        check=False,
    )


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, stdout=subprocess.DEVNULL
    )


def fresh_site(db: str, tmp: Path) -> dict:
    """A migrated, empty database with one user and one project; its env."""
    site = tmp / f"site-{db}"
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir(parents=True)
    if db == "postgres":
        _psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        _psql(f"CREATE DATABASE {PG_DB}")
        env = _env(PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}", site / "media")
    else:
        env = _env(f"sqlite:///{site / 'db.sqlite3'}", site / "media")
    for args in (
        ("migrate", "--noinput", "-v", "0"),
        (
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model as g;"
            "u = g().objects.create_user('bench', password='x');"
            "from webapp.projects.services import create_project as c;"
            f"c(u, 'bench', slug='{SLUG}')",
        ),
    ):
        proc = _manage(env, *args)
        if proc.returncode != 0:
            sys.exit(f"bench_scale: setting up {db} failed ({args[0]}):\n{proc.stderr[-2000:]}")
    return env


# ---- watching the import -------------------------------------------------------------------------
class Watcher(threading.Thread):
    """Reads the import's dataset every 20 ms and keeps when each milestone was first seen."""

    def __init__(self, env: dict, t0: float):
        super().__init__(daemon=True)
        self.url, self.t0 = env["DATABASE_URL"], t0
        self.marks: dict[str, float] = {}
        self.stop = threading.Event()
        self.pid: int | None = None  # the import's process, once started
        self.rss: dict[str, float] = {}  # the largest RSS (MiB) seen while each stage ran

    def _connect(self):
        if self.url.startswith("sqlite:///"):
            path = self.url[len("sqlite:///") :]
            while not Path(path).exists():
                time.sleep(0.02)
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5), "?"
        import psycopg

        return psycopg.connect(self.url.replace("postgres://", "postgresql://"), autocommit=True), "%s"

    def _mark(self, name: str, cond: bool) -> None:
        if cond and name not in self.marks:
            self.marks[name] = time.perf_counter() - self.t0

    def _sample_rss(self) -> None:
        """RSS of the import now (all, and anonymous only: the rest is mapped file pages the
        kernel can drop), kept per stage (the stage = the next milestone not yet seen)."""
        if self.pid is None:
            return
        fields: dict[str, str] = {}
        with contextlib.suppress(OSError), open(f"/proc/{self.pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS:", "RssAnon:")))
        if len(fields) < 2:  # gone, or a zombie: nothing left to sample
            return
        stage = next((k for k in STAGE_KEYS if k not in self.marks), "exit")
        for name, key in (("VmRSS", stage), ("RssAnon", f"{stage}:anon")):
            self.rss[key] = max(self.rss.get(key, 0.0), int(fields[name].split()[0]) / 1024)

    def run(self) -> None:
        conn, ph = self._connect()
        try:
            while not self.stop.is_set():
                with contextlib.suppress(Exception):  # a locked or half-made row: read it next time
                    self._poll(conn, ph)
                self._sample_rss()
                time.sleep(0.02)
        finally:
            conn.close()

    def _poll(self, conn, ph: str) -> None:
        row = conn.execute(
            "SELECT id, progress, status FROM datasets_dataset ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return
        ds, progress, status = row
        self._mark("row", True)
        self._mark("ingest", progress >= 0.01)
        self._mark("extracting", progress > 0.011)
        self._mark("thumbnails", progress >= 0.92)
        self._mark("ready", status == "ready")
        n, scored = conn.execute(
            f"SELECT count(*), count(probability) FROM datasets_ionimage WHERE dataset_id = {ph}", (ds,)
        ).fetchone()
        self._mark("rows", n > 0)
        self._mark("scored", n > 0 and scored == n)


def run_import(env: dict, imzml: str, mz_csv: str, tmp: Path) -> dict:
    """`manage.py import_imzml` in a child process: wall time, milestones, its own peak RSS."""
    t0 = time.perf_counter()
    watcher = Watcher(env, t0)
    watcher.start()
    with open(tmp / "import.out", "w+") as out, open(tmp / "import.err", "w+") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "import_imzml",
                imzml,
                "--project",
                SLUG,
                "--mz-list",
                mz_csv,
                "--ppm",
                str(PPM),
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
        )
        watcher.pid = proc.pid
        # wait4 gives this child's own rusage (ru_maxrss: its peak RSS in KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        err.seek(0)
        stderr = err.read()
    watcher.stop.set()
    watcher.join()
    if proc.returncode != 0:
        sys.exit(f"bench_scale: import_imzml failed (exit {proc.returncode}):\n{stderr[-2000:]}")
    return {
        "wall_s": wall,
        "marks": watcher.marks,
        "stage_rss": watcher.rss,
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def _worker(env: dict, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    if proc.returncode != 0:
        sys.exit(f"bench_scale: the {args[0]} worker failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def django_start(env: dict) -> float:
    """Wall time of `manage.py import_imzml` refusing a missing file: Django + the command."""
    t0 = time.perf_counter()
    _manage(env, "import_imzml", "/nonexistent.imzML", "--project", SLUG)
    return time.perf_counter() - t0


# ---- data ----------------------------------------------------------------------------------------
def make_data(tmp: Path, size: str) -> dict:
    from bench.bench_ingest_score import mz_list_from_data
    from ionsieve_core.msi import read_metadata
    from ionsieve_core.msi.synthetic import write_synthetic_imzml

    h, w, n_ions, noise = SIZES[size]
    t0 = time.perf_counter()
    truth = write_synthetic_imzml(
        tmp / f"data-{size}", h, w, n_on=20, n_off=20, peaks_per_spectrum_noise=noise, seed=0
    )
    gen_s = time.perf_counter() - t0
    meta = read_metadata(truth.imzml_path)
    mzs = mz_list_from_data(truth, meta, n_ions, sampled=80, rng=np.random.default_rng(0), outside_ions=True)
    peaks = int(meta.mz_lengths.sum())
    del meta
    np.save(tmp / f"mzs-{size}.npy", mzs)
    mz_csv = tmp / f"mzs-{size}.csv"
    mz_csv.write_text("mz\n" + "\n".join(repr(float(m)) for m in mzs) + "\n")
    files = os.path.getsize(truth.imzml_path) + os.path.getsize(truth.ibd_path)
    return {
        "imzml": truth.imzml_path,
        "mzs": str(tmp / f"mzs-{size}.npy"),
        "csv": str(mz_csv),
        "h": h,
        "w": w,
        "ions": int(mzs.size),
        "peaks": peaks,
        "files_mb": files / MIB,
        "gen_s": gen_s,
    }


# ---- one size ------------------------------------------------------------------------------------
def bench_size(size: str, dbs: list[str], tmp: Path, extract_runs: int) -> tuple[list[str], bool]:
    print(f"\n[{size}] generating ...", flush=True)
    data = make_data(tmp, size)
    px = data["h"] * data["w"]
    print(
        f"[{size}] {data['h']} x {data['w']} = {px:,} pixels, {data['peaks']:,} peaks "
        f"({data['peaks'] / px:.0f} per pixel), {data['ions']} ions; files {data['files_mb']:,.0f} MiB; "
        f"generated in {data['gen_s']:.0f} s",
        flush=True,
    )
    out_mb = data["h"] * data["w"] * data["ions"] * 4 / MIB
    lines = [
        f"{size}: {data['h']} x {data['w']} = {px:,} px, {data['ions']} ions, {data['peaks'] / px:.0f} peaks/px, "
        f".imzML + .ibd {data['files_mb']:,.0f} MiB, output array {out_mb:,.0f} MiB"
    ]
    ok = True
    for db in dbs:
        db_lines, db_ok = bench_db(db, tmp, data, extract_runs, out_mb)
        lines += db_lines
        ok = ok and db_ok
    for p in Path(data["imzml"]).parent.glob(f"data-{size}.*"):
        p.unlink()
    return lines, ok


def extraction_alone(data: dict, runs: int) -> tuple[dict, str]:
    """The reference: read_metadata + extract in fresh processes, just before the import it is
    compared with (the machine is shared: its load changes from minute to minute)."""
    env0 = dict(os.environ, PYTHONPATH=str(ROOT))
    results = [_worker(env0, "extract", data["imzml"], data["mzs"]) for _ in range(runs)]
    ext = sorted(results, key=lambda r: r["total_s"])[len(results) // 2]
    line = (
        f"    extraction alone (read_metadata + extract, median of {runs}){ext['total_s']:9.2f} s"
        f"   (metadata {ext['metadata_s']:.2f} s + extract {ext['extract_s']:.2f} s; peak RSS "
        f"{ext['peak_rss_mb']:,.0f} MiB)"
    )
    return ext, line


def bench_db(db: str, tmp: Path, data: dict, extract_runs: int, out_mb: float) -> tuple[list[str], bool]:
    print(f"  {db}: extraction alone ...", flush=True)
    ext, ext_line = extraction_alone(data, extract_runs)
    print(f"  {db}: fresh database ...", flush=True)
    env = fresh_site(db, tmp)
    start = django_start(env)
    print(f"  {db}: import_imzml ...", flush=True)
    imp = run_import(env, data["imzml"], data["csv"], tmp)
    gal = _worker(env, "gallery")
    total = imp["wall_s"] + gal["gallery_s"]
    m = imp["marks"]
    stages = _stages(m, imp["stage_rss"], imp["wall_s"])
    rss = imp["peak_rss_mb"]
    load = os.getloadavg()[0]
    lines = [
        f"  {db}: upload complete -> every image scored and visible: {total:.2f} s (load average {load:.1f})",
        ext_line,
    ]
    lines.append(f"    Django start alone (import_imzml of a missing file)     {start:7.2f} s")
    lines += stages
    lines.append(f"    import_imzml start to exit                                {imp['wall_s']:7.2f} s")
    lines.append(
        f"    gallery API first page by score (warm process)           {gal['gallery_s']:7.2f} s"
        f"  ({gal['page']} of {gal['images']} images, {gal['unscored']} unscored, sorted: {gal['sorted']})"
    )
    ratio = total / ext["total_s"]
    lines.append(
        f"    whole path / extraction alone = {ratio:.1f}x (target <= 3x): {'met' if ratio <= 3 else 'MISSED'}"
    )
    extra = rss - out_mb
    lines.append(
        f"    peak RSS of the import {rss:,.0f} MiB = output {out_mb:,.0f} MiB + {extra:,.0f} MiB "
        f"(target + 300 MiB): {'met' if extra <= 300 else 'MISSED'}"
    )
    print("\n".join(lines), flush=True)
    if db == "postgres":
        with contextlib.suppress(subprocess.CalledProcessError):
            _psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
    shutil.rmtree(tmp / f"site-{db}", ignore_errors=True)
    ok = gal["status"] == 200 and gal["sorted"] and gal["unscored"] == 0
    if not ok:
        lines.append(f"    GALLERY NOT READY: {gal}")
    return lines, ok


STAGES = [
    ("ingest", "start -> ingestion begins (Django, checks, files stored)"),
    ("thumbnails", "metadata + extraction (+ TIC, mean spectrum)"),
    ("rows", "thumbnails + image rows"),
    ("ready", "-> dataset ready"),
    ("scored", "-> every image scored"),
]
STAGE_KEYS = [k for k, _ in STAGES]


def _stages(marks: dict[str, float], rss: dict[str, float], wall: float) -> list[str]:
    """Consecutive stages from the milestones seen, with the largest RSS sampled in each; a
    stage too short to be seen between two reads is folded into the next one."""
    out, last = [], 0.0
    for key, label in [*STAGES, ("exit", "-> command exits")]:
        end = wall if key == "exit" else marks.get(key)
        if end is None or end < last:
            continue
        seen = f"   RSS up to {rss[key]:,.0f} MiB ({rss[key + ':anon']:,.0f} anonymous)" if key in rss else ""
        out.append(f"    {label:<56} {end - last:7.2f} s{seen}")
        last = end
    return out


def _pg_reachable() -> bool:
    return (
        subprocess.run(
            ["psql", PG_ADMIN, "-q", "-c", "SELECT 1"], capture_output=True, check=False
        ).returncode
        == 0
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", action="append", choices=sorted(SIZES), help="repeatable; default 100k")
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--worker", nargs="+")
    args = ap.parse_args()
    if args.worker:
        kind, *rest = args.worker
        print(json.dumps({"extract": work_extract, "gallery": work_gallery}[kind](*rest)))
        return
    dbs = [d for d in args.db.split(",") if d]
    if "postgres" in dbs and not _pg_reachable():
        sys.exit(f"bench_scale: PostgreSQL is not reachable at {PG_ADMIN} (scripts/services.sh starts it)")
    sizes = args.size or ["100k"]
    tmp = Path(tempfile.mkdtemp(prefix="ionsieve_bench_scale_"))
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; sizes {sizes}; {dbs}"
    )
    summary, ok = [], True
    try:
        for size in sizes:
            lines, size_ok = bench_size(size, dbs, tmp, 3 if size == "100k" else 1)
            summary += lines
            ok = ok and size_ok
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nSummary (load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    print("\n".join(summary))
    if not ok:
        sys.exit("bench_scale: a gallery was not sorted by score with every image scored")


if __name__ == "__main__":
    main()
