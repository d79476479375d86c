"""Load benchmark: concurrent users on a 10,000-image dataset, served by gunicorn on loopback.

    .venv/bin/python bench/bench_load.py [--quick] [--only sqlite,postgres,full]

Scenarios (each bounded in requests and seconds; everything runs on 127.0.0.1 and is stopped
at the end):

1. sqlite   - the embedded default (SQLite file, WAL): 20 users, each alternating gallery
              pages (GET /api/datasets/ID/images/?ordering=...&page=N) and label PUTs.
              Targets: gallery API p95 < 300 ms, label PUT p95 < 100 ms.
2. postgres - the same on PostgreSQL (database `ionsieve_bench`, created and dropped here).
3. full     - PostgreSQL + Redis broker, 50 users browsing like people do: project page,
              gallery page, image page, gallery API pages, filter counts, thumbnails, labels.
              Targets: p95 < 300 ms for pages and API reads, 0 errors.

The dataset is made without the MSI pipeline (tests/gallery_data.py: random images,
thumbnails, rows via save_images, default-score predictions via store_predictions).
Needs PostgreSQL on 127.0.0.1:5432 (trust) and Redis on 127.0.0.1:6379 for scenarios 2-3
(scripts/services.sh starts them).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from tests.reliability.livesite import Gunicorn, migrate, seed_subprocess, site_env  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DB = "ionsieve_bench"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
IMAGES = 10_000
ORDERINGS = ["-probability", "probability", "uncertainty", "mz", "-mz", "index", "name"]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def timed(self, kind: str, session: requests.Session, method: str, url: str, ok=(200,), **kw):
        t = time.perf_counter()
        try:
            r = session.request(method, url, timeout=60, **kw)
            status, body = r.status_code, r.content
        except requests.RequestException as exc:
            status, body = None, str(exc).encode()
        dt = (time.perf_counter() - t) * 1000
        with self.lock:
            self.times[kind].append(dt)
            if status not in ok:
                self.errors[kind].append(f"{status} {method} {url}: {body[:120]!r}")
        return status, body

    def report(self, title: str, wall: float) -> list[str]:
        total = sum(len(v) for v in self.times.values())
        errors = sum(len(v) for v in self.errors.values())
        lines = [f"{title}: {total:,} requests in {wall:.1f} s = {total / wall:.0f} req/s, {errors} errors",
                 f"  {'kind':<10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'err':>4}"]
        for kind in sorted(self.times):
            v = self.times[kind]
            lines.append(f"  {kind:<10} {len(v):>6} {statistics.median(v):>8.1f} {pct(v, 95):>8.1f} "
                         f"{pct(v, 99):>8.1f} {max(v):>8.1f} {len(self.errors[kind]):>4}")
        for kind, errs in self.errors.items():
            for e in errs[:3]:
                lines.append(f"  error {kind}: {e}")
        print("\n".join(lines), flush=True)
        return lines


THINK = (0.5, 1.5)  # seconds between two actions of one person (set by --think)


def think(rng: random.Random) -> None:
    if THINK[1] > 0:
        time.sleep(rng.uniform(*THINK))


def run_users(n_users: int, per_user: int, limit_s: float, user_loop) -> float:
    stop_at = time.monotonic() + limit_s
    barrier = threading.Barrier(n_users)
    threads = [threading.Thread(target=user_loop, args=(u, per_user, stop_at, barrier)) for u in range(n_users)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def labelling_scenario(title: str, server: Gunicorn, site: dict, users: int, per_user: int, limit_s: float):
    """Users page through the gallery and label what they see (one PUT per gallery page)."""
    rec = Recorder()
    ds = site["datasets"][0]
    images = site["images"]

    def loop(u: int, n: int, stop_at: float, barrier) -> None:
        rng = random.Random(u)
        s = requests.Session()
        s.headers["Authorization"] = f"Token {site['tokens'][u]}"
        s.get(f"{server.url}/api/datasets/{ds}/images/")  # warm-up, not measured
        barrier.wait()
        for i in range(n):
            if time.monotonic() > stop_at:
                return
            think(rng)
            if i % 2 == 0:
                page = rng.randint(1, IMAGES // 100)
                rec.timed("gallery", s, "GET", f"{server.url}/api/datasets/{ds}/images/",
                          params={"ordering": rng.choice(ORDERINGS), "page": page})
            else:
                rec.timed("label", s, "PUT", f"{server.url}/api/images/{rng.choice(images)}/label/",
                          json={"label": rng.choice(site["classes"])})

    wall = run_users(users, per_user, limit_s, loop)
    return rec.report(title, wall), rec


def browsing_scenario(title: str, server: Gunicorn, site: dict, users: int, per_user: int, limit_s: float):
    """People browsing: pages (session cookie), gallery API pages, counts, thumbnails, labels."""
    rec = Recorder()
    ds, slug = site["datasets"][0], site["slug"]
    images = site["images"]

    def loop(u: int, n: int, stop_at: float, barrier) -> None:
        rng = random.Random(100 + u)
        s = requests.Session()
        s.cookies.set("sessionid", site["sessions"][u], domain="127.0.0.1", path="/")
        s.get(f"{server.url}/accounts/login/")  # a csrftoken cookie for the session-authenticated PUTs
        s.get(f"{server.url}/p/{slug}/")  # warm-up, not measured
        csrf = s.cookies.get("csrftoken", "")
        barrier.wait()
        for i in range(n):
            if time.monotonic() > stop_at:
                return
            think(rng)
            step = i % 10
            if step == 0:
                rec.timed("page", s, "GET", f"{server.url}/p/{slug}/")
            elif step == 1:
                rec.timed("page", s, "GET", f"{server.url}/datasets/{ds}/gallery/")
            elif step in (2, 5, 8):
                st, body = rec.timed("api-read", s, "GET", f"{server.url}/api/datasets/{ds}/images/",
                                     params={"ordering": rng.choice(ORDERINGS), "page": rng.randint(1, 100)})
            elif step == 3:
                rec.timed("api-read", s, "GET", f"{server.url}/api/datasets/{ds}/images/counts/")
            elif step in (4, 7):
                for im in rng.sample(images, 4):
                    rec.timed("thumbnail", s, "GET", f"{server.url}/api/images/{im}/thumbnail/")
            elif step == 6:
                rec.timed("page", s, "GET", f"{server.url}/images/{rng.choice(images)}/")
            else:
                rec.timed("label", s, "PUT", f"{server.url}/api/images/{rng.choice(images)}/label/",
                          json={"label": rng.choice(site["classes"])},
                          headers={"X-CSRFToken": csrf, "Referer": server.url + "/"})

    wall = run_users(users, per_user, limit_s, loop)
    return rec.report(title, wall), rec


def psql(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def verdict(rec: Recorder, targets: dict[str, float]) -> list[str]:
    out = []
    for kind, limit in targets.items():
        v = rec.times.get(kind, [])
        p95 = pct(v, 95)
        out.append(f"  {kind} p95 {p95:.0f} ms (target < {limit:.0f} ms): {'met' if p95 < limit else 'MISSED'}")
    errors = sum(len(v) for v in rec.errors.values())
    out.append(f"  errors: {errors} ({'met' if errors == 0 else 'MISSED'})")
    print("\n".join(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    ap.add_argument("--only", default="sqlite,postgres,full")
    ap.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 2) + 1))
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--think", default="0.5,1.5", help="min,max seconds between a person's actions (0,0: none)")
    args = ap.parse_args()
    global THINK
    THINK = tuple(float(x) for x in args.think.split(","))
    only = set(args.only.split(","))
    per_user = 20 if args.quick else 60
    tmp = Path(tempfile.mkdtemp(prefix="ionsieve-bench-load-"))
    print(f"gunicorn: {args.workers} workers x {args.threads} threads (gthread); {os.cpu_count()} CPUs; "
          f"{IMAGES:,} images; think time {THINK[0]}-{THINK[1]} s", flush=True)
    summary: list[str] = []
    try:
        if "sqlite" in only:
            env = site_env(f"sqlite:///{tmp / 'bench.sqlite3'}", tmp / "media-sqlite")
            migrate(env)
            t = time.perf_counter()
            site = seed_subprocess(env, images=IMAGES, annotators=20, thumbnails=True)
            print(f"sqlite: dataset of {IMAGES:,} images made in {time.perf_counter() - t:.1f} s", flush=True)
            with Gunicorn(env, workers=args.workers, threads=args.threads, log_path=tmp / "gunicorn-sqlite.log") as g:
                lines, rec = labelling_scenario("SQLite, 20 users", g, site, 20, per_user, 120)
                summary += lines + verdict(rec, {"gallery": 300, "label": 100})
        if only & {"postgres", "full"}:
            psql(f"DROP DATABASE IF EXISTS {PG_DB}")
            psql(f"CREATE DATABASE {PG_DB}")
            pg_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"
            env = site_env(pg_url, tmp / "media-pg", broker_url=REDIS, DB_CONN_MAX_AGE="60")
            migrate(env)
            t = time.perf_counter()
            site = seed_subprocess(env, images=IMAGES, annotators=50, thumbnails=True)
            print(f"postgres: dataset of {IMAGES:,} images made in {time.perf_counter() - t:.1f} s", flush=True)
            # What autovacuum does within a minute of a big ingestion; without it the planner
            # believes the dataset has 6 rows and sorts all 10,000 (26 ms instead of 3.5 ms).
            subprocess.run(["psql", pg_url, "-q", "-c", "ANALYZE"], check=True)
            with Gunicorn(env, workers=args.workers, threads=args.threads, log_path=tmp / "gunicorn-pg.log") as g:
                if "postgres" in only:
                    lines, rec = labelling_scenario("PostgreSQL, 20 users", g, site, 20, per_user, 120)
                    summary += lines + verdict(rec, {"gallery": 300, "label": 100})
                if "full" in only:
                    lines, rec = browsing_scenario("PostgreSQL + Redis, 50 users browsing", g, site, 50,
                                                   per_user, 180)
                    summary += lines + verdict(rec, {"page": 300, "api-read": 300, "thumbnail": 300})
    finally:
        if only & {"postgres", "full"}:
            with contextlib.suppress(subprocess.CalledProcessError):
                psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nSummary\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
