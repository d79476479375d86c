"""Load benchmark: concurrent users on a 10,000-image dataset, served by gunicorn on loopback
(gthread, --preload, keep-alive 0 as deploy/gunicorn.conf.py: a connection per request).

    .venv/bin/python bench/bench_load.py [--quick] [--only sqlite,postgres,full,scale]

Scenarios (each bounded in requests and seconds; everything runs on 127.0.0.1 and is stopped
at the end):

1. sqlite   - the embedded default (SQLite file, WAL): 20 users, each alternating gallery
              pages (GET /api/datasets/ID/images/?ordering=...&page=N) and label PUTs.
              Targets: gallery API p95 < 300 ms, label PUT p95 < 100 ms.
2. postgres - the same on PostgreSQL (database `ionsieve_bench`, created and dropped here).
3. full     - PostgreSQL + Redis (broker, and the cache: figures, sessions), 50 users browsing: project page,
              gallery page, image page, gallery API pages, filter counts, thumbnails, labels.
              Like a browser, each user fetches a page's thumbnails (the signed `thumbnail_url`s
              of its last gallery API page) and the image page's figures concurrently, over 4
              connections of its own, and keeps what the server marks immutable.
              Targets (issue 14): p95 < 300 ms for pages, API reads and thumbnails, label PUT
              p95 < 150 ms, >= 150 requests/s for the mix, 0 errors.
4. scale    - a project of 100 datasets x 1,000 images (100,000 images) on PostgreSQL + Redis
              (asked with --only scale; its rows take minutes to make): 20 users alternating
              gallery API pages (half the project-wide gallery, /api/projects/SLUG/images/, half
              a random dataset's) and label PUTs on random images of the 100,000, twice: first
              scrolling the project-wide gallery as the page does (its `next` links, keyset
              cursors, from starting points at uniform random depths of 1,000 pages), then
              jumping to `?page=N` at a random N (OFFSET). Targets (issue 13): gallery API p95
              < 300 ms, label PUT p95 < 100 ms.

Think time (--think, seconds between two actions of one user) defaults to 0.5-1.5 s for the
labelling scenarios. `full` runs three times (--full-think): as people think (0.5-1.5 s), paced
(rate:160) and with no think time. With 1 s of thinking, 50 users cannot ask for more than ~80
requests/s; with none, 50 users are a queue of 50 and latency is 50 / throughput whatever the
server does (Little's law). The paced run is the one that checks the targets together: the users
act on a schedule that asks for 160 requests/s of the mix between them (the target's 150, and
a margin for the run's first and last second), and the run reports the rate reached and the
latencies at that load. The client runs on the same cores as the server:
its own CPU share is printed.
Each run's figures are kept in var/bench/bench_load.json and the next run prints its ratios
to them.

The dataset is made without the MSI pipeline (tests/gallery_data.py: random images,
thumbnails, rows via save_images, default-score predictions via store_predictions).
Needs PostgreSQL on 127.0.0.1:5432 (trust) and Redis on 127.0.0.1:6379 for scenarios 2-4
(scripts/services.sh starts them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from json import dumps as json_dumps
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import urllib3  # noqa: E402

from tests.reliability.livesite import Gunicorn, migrate, seed_subprocess, site_env  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DB = "ionsieve_bench"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# The shared cache production runs with (docs/production.md, CACHE_URL): figures and sessions.
# Emptied before each run, so that a run never starts with the previous run's figures.
CACHE = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/10")
IMAGES = 10_000
ORDERINGS = ["-probability", "probability", "uncertainty", "mz", "-mz", "index", "name"]
LAST_RUN = ROOT / "var" / "bench" / "bench_load.json"
# bench_load.py --only full as measured when issue 14 was filed (2 cores, gunicorn 3 x 4, think 0.5-1.5 s,
# thumbnails one after another through the permission-checked endpoint, figures built in the pages).
ISSUE_14 = {"rps": 37, "p95": {"page": 3600, "api-read": 1500, "thumbnail": 1800, "label": 1500}}
FIGURE_URL = re.compile(r'data-figure-url="([^"]+)"')


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


class Browser:
    """One user's keep-alive connection to the server: default headers and cookies, no
    redirects followed (a 302 to the login page is an error here).

    Plain urllib3 rather than requests: the load generator shares the server's two cores, and
    requests spent 1.4-2.0 ms of CPU per request against urllib3's 0.4-0.8 ms (measured on a
    thumbnail and a gallery API page), CPU the server then did not get. Each instance is used
    by one thread; `fork()` gives a parallel connection with the same cookies."""

    def __init__(self, base_url: str, headers: dict | None = None, cookies: dict | None = None):
        parts = urlsplit(base_url)
        self.base = base_url
        self.pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1, retries=False)
        # What a browser sends: gzip is accepted (figures are compressed), kept alive.
        self.headers = {"Accept-Encoding": "gzip, deflate", **(headers or {})}
        self.cookies: dict[str, str] = dict(cookies or {})

    def fork(self) -> Browser:
        return Browser(self.base, self.headers, self.cookies)

    def request(self, method: str, url: str, params=None, json=None, headers=None, timeout: float = 60):
        """(status, body) of one request to `url` (absolute, or a path on the server)."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        h = {**self.headers, **(headers or {})}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if json is not None:
            body, h["Content-Type"] = json_dumps(json).encode(), "application/json"
        r = self.pool.urlopen(
            method, target, body=body, headers=h, redirect=False, timeout=urllib3.Timeout(timeout)
        )
        for cookie in r.headers.getlist("Set-Cookie"):
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return r.status, r.data

    def get(self, url: str, params=None):
        return self.request("GET", url, params=params)


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def timed(self, kind: str, session: Browser, method: str, url: str, ok=(200,), **kw):
        t = time.perf_counter()
        try:
            status, body = session.request(method, url, **kw)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            status, body = None, str(exc).encode()
        dt = (time.perf_counter() - t) * 1000
        with self.lock:
            self.times[kind].append(dt)
            if status not in ok:
                self.errors[kind].append(f"{status} {method} {url}: {body[:120]!r}")
        return status, body

    def figures(self, wall: float, client_cpu: float, machine_busy: float | None) -> dict:
        total = sum(len(v) for v in self.times.values())
        return {
            "requests": total,
            "wall": wall,
            "rps": total / wall,
            "errors": sum(len(v) for v in self.errors.values()),
            "client_cpu": client_cpu,
            "machine_busy": machine_busy,
            "server_cpu_ms": None,
            "p95": {k: pct(v, 95) for k, v in self.times.items()},
            "p50": {k: statistics.median(v) for k, v in self.times.items()},
        }

    def report(self, title: str, run: Run, previous: dict | None = None) -> tuple[list[str], dict]:
        """Print the figures; `previous`: the same scenario's figures from the last run, for ratios."""
        wall = run.wall
        fig = self.figures(wall, run.client_cpu, run.machine_busy)
        total, errors = fig["requests"], fig["errors"]
        lines = [
            f"{title}: {total:,} requests in {wall:.1f} s = {fig['rps']:.0f} req/s, {errors} errors"
            + (
                f" (previous run {previous['rps']:.0f} req/s: x{fig['rps'] / previous['rps']:.2f})"
                if previous
                else ""
            ),
            f"  client: {run.client_cpu:.0%} of one core (bench process CPU / wall)"
            + (
                f"; all {os.cpu_count()} cores {run.machine_busy:.0%} busy"
                if run.machine_busy is not None
                else ""
            ),
        ]
        if run.server_cpu and total:
            per = {k: v / total * 1000 for k, v in run.server_cpu.items()}
            client = run.client_cpu * wall / total * 1000
            fig["server_cpu_ms"] = per
            # What the server would sustain if these cores ran nothing else (client included).
            ceiling = (os.cpu_count() or 1) * 1000 / (sum(per.values()) + client)
            lines.append(
                f"  CPU per request: gunicorn {per['gunicorn']:.1f} ms + PostgreSQL {per['postgres']:.1f} ms"
                f" + client {client:.1f} ms -> at most ~{ceiling:.0f} req/s on {os.cpu_count()} idle cores"
                f"; the server got {sum(run.server_cpu.values()) / wall:.2f} cores of them here"
            )
        lines.append(
            f"  {'kind':<10} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'err':>4}"
            + ("  p95 previous -> now" if previous else "")
        )
        for kind in sorted(self.times):
            v = self.times[kind]
            line = (
                f"  {kind:<10} {len(v):>6} {statistics.median(v):>8.1f} {pct(v, 95):>8.1f} "
                f"{pct(v, 99):>8.1f} {max(v):>8.1f} {len(self.errors[kind]):>4}"
            )
            before = (previous or {}).get("p95", {}).get(kind)
            if before:
                line += f"  {before:.0f} ms -> x{before / pct(v, 95):.2f} faster"
            lines.append(line)
        for kind, errs in self.errors.items():
            for e in errs[:3]:
                lines.append(f"  error {kind}: {e}")
        print("\n".join(lines), flush=True)
        return lines, fig


THINK = (0.5, 1.5)  # seconds between two actions of one person (set by --think)
# The browsing mix asks, per 10 steps: 3 pages, 3 gallery API pages, 1 count, 2 x 4 thumbnails
# and 1 label PUT (figures come on top and are counted apart): 16 requests.
MIX_PER_STEP = 1.6


def think(rng: random.Random) -> None:
    if THINK[1] > 0:
        time.sleep(rng.uniform(*THINK))


class Pacer:
    """A person acting on a schedule, not after each answer: `users` of them together ask for
    `rate` requests/s of the mix, whatever the latency (until the server falls behind: then a
    late person acts at once and the rate reached is lower, as printed). Step i is due at the
    person's own phase plus i mean gaps, moved by up to half a gap either way so that the users
    do not march in step; the slots do not drift, so every user ends with the run and the rate
    holds to the end. Throughput and latency are then measured under one load, which neither
    thinking people (a throughput set by their think time) nor users with no think time (a queue
    of 50: latency = users / throughput) give."""

    def __init__(self, rng: random.Random, users: int, rate: float):
        self.rng, self.mean = rng, users * MIX_PER_STEP / rate
        self.start: float | None = None
        self.step = 0

    def wait(self) -> None:
        if self.start is None:
            self.start = time.monotonic() + self.rng.uniform(0, self.mean)
        due = self.start + self.mean * (self.step + self.rng.uniform(-0.5, 0.5))
        self.step += 1
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat (None where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def server_cpu(master_pid: int | None) -> dict[tuple[str, int], float]:
    """CPU seconds used so far by each gunicorn process (master and workers) and each PostgreSQL
    backend serving the bench database, by (kind, pid). Other engineers' processes share these
    cores: this is what the server itself spent, whatever else ran."""
    out: dict[tuple[str, int], float] = {}
    if master_pid is None:
        return out
    hz = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        pid, ppid, cpu = int(d.name), int(fields[1]), (int(fields[11]) + int(fields[12])) / hz
        if pid == master_pid or ppid == master_pid:
            out["gunicorn", pid] = cpu
        elif cmd.startswith(b"postgres: ") and f" {PG_DB} ".encode() in cmd:
            out["postgres", pid] = cpu
    return out


def cpu_spent(start: dict[tuple[str, int], float], end: dict[tuple[str, int], float]) -> dict[str, float]:
    """CPU seconds per kind between two `server_cpu` readings, process by process: a process that
    started meanwhile counts whole, one that exited is lost (an undercount, never negative: the
    totals subtracted before let a backend that exited make PostgreSQL's share negative)."""
    spent = {"gunicorn": 0.0, "postgres": 0.0}
    for (kind, pid), cpu in end.items():
        spent[kind] += max(0.0, cpu - start.get((kind, pid), 0.0))
    return spent


class Run:
    """Wall time, the bench process's own CPU, the server's and the machine's over one scenario."""

    def __init__(self):
        self.wall = self.client_cpu = 0.0
        self.machine_busy: float | None = None
        self.server_cpu: dict[str, float] = {}


def run_users(n_users: int, per_user: int, limit_s: float, user_loop, master_pid: int | None = None) -> Run:
    stop_at = time.monotonic() + limit_s
    # The barrier's action runs once, when every user is ready: the clock starts there, after
    # the unmeasured warm-up requests.
    run, marks = Run(), {}

    def start_clock():
        marks.update(
            t=time.perf_counter(), cpu=time.process_time(), ticks=cpu_ticks(), server=server_cpu(master_pid)
        )

    barrier = threading.Barrier(n_users, action=start_clock)
    threads = [
        threading.Thread(target=user_loop, args=(u, per_user, stop_at, barrier)) for u in range(n_users)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.wall = time.perf_counter() - marks["t"]
    run.client_cpu = (time.process_time() - marks["cpu"]) / run.wall
    run.server_cpu = cpu_spent(marks["server"], server_cpu(master_pid))
    end = cpu_ticks()
    if end and marks["ticks"] and end[1] > marks["ticks"][1]:
        run.machine_busy = (end[0] - marks["ticks"][0]) / (end[1] - marks["ticks"][1])
    return run


def labelling_scenario(title: str, server: Gunicorn, site: dict, users: int, per_user: int, limit_s: float):
    """Users page through the gallery and label what they see (one PUT per gallery page)."""
    rec = Recorder()
    ds = site["datasets"][0]
    images = site["images"]

    def loop(u: int, n: int, stop_at: float, barrier) -> None:
        rng = random.Random(u)
        s = Browser(server.url, {"Authorization": f"Token {site['tokens'][u]}"})
        s.get(f"{server.url}/api/datasets/{ds}/images/")  # warm-up, not measured
        barrier.wait()
        for i in range(n):
            if time.monotonic() > stop_at:
                return
            think(rng)
            if i % 2 == 0:
                page = rng.randint(1, IMAGES // 100)
                rec.timed(
                    "gallery",
                    s,
                    "GET",
                    f"{server.url}/api/datasets/{ds}/images/",
                    params={"ordering": rng.choice(ORDERINGS), "page": page},
                )
            else:
                rec.timed(
                    "label",
                    s,
                    "PUT",
                    f"{server.url}/api/images/{rng.choice(images)}/label/",
                    json={"label": rng.choice(site["classes"])},
                )

    run = run_users(users, per_user, limit_s, loop, server.proc.pid if server.proc else None)
    lines, fig = rec.report(title, run, previous_run().get(title))
    return lines, rec, fig


SCALE_DATASETS, SCALE_IMAGES = 100, 1_000  # issue 13: a project of 100 datasets x 1,000 images


SCROLL_PAGES = 10  # pages one user scrolls through from one starting point


def scroll_starts(server: Gunicorn, site: dict, users: int, per_user: int) -> list[list[str]]:
    """Each user's starting points in the project-wide gallery, made before the clock starts:
    a random ordering and a uniformly random depth, reached with an untimed page-number request
    whose `next` link (a cursor) is where that user's scrolling resumes. Uniform depth, as the
    page-number runs had: the deep pages are the costly ones."""
    pages = len(site["images"]) // 100
    s = Browser(server.url, {"Authorization": f"Token {site['tokens'][0]}"})
    starts: list[list[str]] = []
    for u in range(users):
        rng = random.Random(300 + u)
        mine = []
        for _ in range(per_user // (4 * SCROLL_PAGES) + 2):
            params = {"ordering": rng.choice(ORDERINGS), "page": rng.randint(1, pages - SCROLL_PAGES)}
            status, body = s.get(f"{server.url}/api/projects/{site['slug']}/images/", params=params)
            if status != 200:
                raise RuntimeError(f"a starting page answered {status}: {body[:200]!r}")
            mine.append(json.loads(body)["next"])
        starts.append(mine)
    return starts


def scale_scenario(  # noqa: C901 - one user's mix, written as the steps it takes
    title: str, server: Gunicorn, site: dict, users: int, per_user: int, limit_s: float, scroll: bool
):
    """Labelling across a 100,000-image project: project-wide and per-dataset gallery pages,
    label PUTs on random images. With `scroll`, project-wide pages are read as the gallery
    reads them: from a starting point, the `next` link of each page (keyset cursors), 10 pages,
    then another starting point. Without, as an API client jumping: `?page=N` at a random N."""
    rec = Recorder()
    datasets, images, slug = site["datasets"], site["images"], site["slug"]
    project_pages = len(images) // 100
    by_query: list[tuple[str, int, float]] = []  # project-wide pages: (ordering, depth in pages, ms)
    starts = scroll_starts(server, site, users, per_user) if scroll else []

    def loop(u: int, n: int, stop_at: float, barrier) -> None:
        rng = random.Random(200 + u)
        s = Browser(server.url, {"Authorization": f"Token {site['tokens'][u]}"})
        s.get(f"{server.url}/api/projects/{slug}/images/")  # warm-up, not measured
        todo, url, depth = list(starts[u]) if scroll else [], None, 0
        barrier.wait()
        for i in range(n):
            if time.monotonic() > stop_at:
                return
            think(rng)
            params = {"ordering": rng.choice(ORDERINGS)}
            if i % 4 == 0 and scroll:
                if url is None or depth % SCROLL_PAGES == 0:
                    url = todo.pop(0)
                ordering = re.search(r"ordering=([^&]+)", url).group(1)
                t = time.perf_counter()
                status, body = rec.timed("gallery-project", s, "GET", url)
                by_query.append((ordering, depth, (time.perf_counter() - t) * 1000))
                url, depth = (json.loads(body)["next"] if status == 200 else None), depth + 1
            elif i % 4 == 0:
                params["page"] = rng.randint(1, project_pages)
                t = time.perf_counter()
                url_ = f"{server.url}/api/projects/{slug}/images/"
                rec.timed("gallery-project", s, "GET", url_, params=params)
                by_query.append((params["ordering"], params["page"], (time.perf_counter() - t) * 1000))
            elif i % 4 == 2:
                params["page"] = rng.randint(1, SCALE_IMAGES // 100)
                url_ = f"{server.url}/api/datasets/{rng.choice(datasets)}/images/"
                rec.timed("gallery-dataset", s, "GET", url_, params=params)
            else:
                rec.timed(
                    "label",
                    s,
                    "PUT",
                    f"{server.url}/api/images/{rng.choice(images)}/label/",
                    json={"label": rng.choice(site["classes"])},
                )

    run = run_users(users, per_user, limit_s, loop, server.proc.pid if server.proc else None)
    lines, fig = rec.report(title, run, previous_run().get(title))
    if scroll:
        lines.append(f"  {len(by_query)} project-wide pages read through `next` links (cursors)")
    else:
        lines += _project_pages_breakdown(by_query, project_pages)
    return lines, rec, fig


def _project_pages_breakdown(by_query: list[tuple[str, int, float]], pages: int) -> list[str]:
    """Where the project-wide gallery's time goes: by ordering, and by page depth."""
    groups: dict[str, list[float]] = defaultdict(list)
    for ordering, page, ms in by_query:
        groups[f"ordering={ordering}"].append(ms)
        groups[f"pages {'1-10' if page <= 10 else f'11-{pages}'}"].append(ms)
    lines = ["  gallery-project by query:  n   p50 ms   p95 ms"]
    lines += [
        f"    {k:<22} {len(v):>4} {statistics.median(v):>8.1f} {pct(v, 95):>8.1f}"
        for k, v in sorted(groups.items())
    ]
    print("\n".join(lines), flush=True)
    return lines


def served(args, env: dict, log_path: Path) -> Gunicorn:
    """The server each scenario measures: --workers x --threads, --keep-alive, on `env`'s site."""
    return Gunicorn(
        env, workers=args.workers, threads=args.threads, keepalive=args.keep_alive, log_path=log_path
    )


def run_scale(args, tmp: Path, per_user: int) -> tuple[list[str], dict]:
    """Scenario 4 on its own database (the 10,000-image one of scenarios 2-3 is not reused)."""
    psql(f"DROP DATABASE IF EXISTS {PG_DB}")
    psql(f"CREATE DATABASE {PG_DB}")
    pg_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"
    env = site_env(pg_url, tmp / "media-scale", broker_url=REDIS, DB_CONN_MAX_AGE="60")
    migrate(env)
    t = time.perf_counter()
    site = seed_subprocess(env, images=SCALE_IMAGES, annotators=20, datasets=SCALE_DATASETS, thumbnails=False)
    print(
        f"scale: project of {SCALE_DATASETS} datasets x {SCALE_IMAGES:,} images = {len(site['images']):,} "
        f"images made in {time.perf_counter() - t:.1f} s (no thumbnails: not asked here)",
        flush=True,
    )
    # What autovacuum does after a bulk insert (PostgreSQL >= 13 vacuums on inserts too): the
    # visibility map lets the covering indexes answer pages without reading the table.
    subprocess.run(["psql", pg_url, "-q", "-c", "VACUUM ANALYZE"], check=True)
    lines: list[str] = []
    figs: dict[str, dict] = {}
    targets = {"gallery-project": 300, "gallery-dataset": 300, "label": 100}
    with served(args, env, tmp / "gunicorn-scale.log") as g:
        base = f"PostgreSQL + Redis, {len(site['images']):,} images in {SCALE_DATASETS} datasets, 20 users"
        # The gallery's way first (scrolling through `next` links), then page-number jumps.
        for title, scroll in ((f"{base}, scrolling", True), (f"{base}, page-number jumps", False)):
            part, rec, figs[title] = scale_scenario(title, g, site, 20, per_user, 180, scroll)
            load = os.getloadavg()
            part.append(f"  load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
            lines += part + verdict(rec, targets)
    return lines, figs


def browsing_scenario(  # noqa: C901 - one user's browsing mix, written as the steps it takes
    title: str,
    server: Gunicorn,
    site: dict,
    users: int,
    per_user: int,
    limit_s: float,
    rate: float | None = None,
):
    """People browsing: pages (session cookie), gallery API pages, counts, thumbnails, labels;
    each thinking (THINK) or, with `rate`, all together asking for that many requests/s."""
    rec = Recorder()
    ds, slug = site["datasets"][0], site["slug"]
    images = site["images"]

    def loop(u: int, n: int, stop_at: float, barrier) -> None:  # noqa: C901 - the mix, step by step
        rng = random.Random(100 + u)
        s = Browser(server.url, cookies={"sessionid": site["sessions"][u]})
        s.get(f"{server.url}/accounts/login/")  # a csrftoken cookie for the session-authenticated PUTs
        s.get(f"{server.url}/p/{slug}/")  # warm-up, not measured
        csrf = s.cookies.get("csrftoken", "")
        # A browser's parallel connections: thumbnails and figures are fetched 4 at a time, each
        # connection with its own keep-alive Browser (each is used by one thread).
        local = threading.local()

        def side_session() -> Browser:
            if not hasattr(local, "s"):
                local.s = s.fork()
            return local.s

        kept: set[str] = set()  # URLs answered "immutable": the browser would not ask again

        def fetch(kind: str, url: str) -> None:
            if url in kept:
                return
            st, _ = rec.timed(kind, side_session(), "GET", server.url + url)
            if st == 200:
                kept.add(url)

        def fetch_all(kind: str, urls: list[str]) -> None:
            list(pool.map(lambda x: fetch(kind, x), urls))

        thumbs: list[str] = []
        pacer = Pacer(rng, users, rate) if rate else None
        # Each person starts at their own point of the 10-step mix: started together at step 0,
        # the 50 users asked for 50 project pages in the same half second, then 50 gallery pages,
        # and the load came in waves a mix cycle apart that no real group of people makes.
        first = rng.randrange(10)
        with ThreadPoolExecutor(max_workers=4) as pool:
            barrier.wait()
            for i in range(n):
                if time.monotonic() > stop_at:
                    return
                pacer.wait() if pacer else think(rng)
                step = (first + i) % 10
                if step == 0:
                    rec.timed("page", s, "GET", f"{server.url}/p/{slug}/")
                elif step == 1:
                    rec.timed("page", s, "GET", f"{server.url}/datasets/{ds}/gallery/")
                elif step in (2, 5, 8):
                    st, body = rec.timed(
                        "api-read",
                        s,
                        "GET",
                        f"{server.url}/api/datasets/{ds}/images/",
                        params={"ordering": rng.choice(ORDERINGS), "page": rng.randint(1, 100)},
                    )
                    if st == 200:
                        thumbs = [item["thumbnail_url"] for item in json.loads(body)["results"]]
                elif step == 3:
                    rec.timed("api-read", s, "GET", f"{server.url}/api/datasets/{ds}/images/counts/")
                elif step in (4, 7):
                    # The tiles a user scrolls to: 4 of the last page's 100, fetched side by side.
                    fetch_all(
                        "thumbnail",
                        rng.sample(thumbs, 4)
                        if len(thumbs) >= 4
                        else [f"/api/images/{im}/thumbnail/" for im in rng.sample(images, 4)],
                    )
                elif step == 6:
                    st, body = rec.timed("page", s, "GET", f"{server.url}/images/{rng.choice(images)}/")
                    if st == 200:
                        fetch_all(
                            "figure", [m.replace("&amp;", "&") for m in FIGURE_URL.findall(body.decode())]
                        )
                else:
                    rec.timed(
                        "label",
                        s,
                        "PUT",
                        f"{server.url}/api/images/{rng.choice(images)}/label/",
                        json={"label": rng.choice(site["classes"])},
                        headers={"X-CSRFToken": csrf, "Referer": server.url + "/"},
                    )

    run = run_users(users, per_user, limit_s, loop, server.proc.pid if server.proc else None)
    lines, fig = rec.report(title, run, previous_run().get(title))
    mix = sum(len(v) for k, v in rec.times.items() if k != "figure")
    fig["rps_mix"] = mix / run.wall
    extra = [
        f"  without the figure requests (the mix of the earlier runs, whose pages embedded them): "
        f"{mix:,} requests = {mix / run.wall:.0f} req/s",
        f"  issue 14 baseline: {ISSUE_14['rps']} req/s, p95 "
        + ", ".join(f"{k} {v:,} ms" for k, v in ISSUE_14["p95"].items())
        + " -> now x"
        + f"{fig['rps_mix'] / ISSUE_14['rps']:.1f} req/s, p95 "
        + ", ".join(
            f"{k} x{v / fig['p95'][k]:.1f} faster" for k, v in ISSUE_14["p95"].items() if k in fig["p95"]
        ),
    ]
    print("\n".join(extra), flush=True)
    return lines + extra, rec, fig


def previous_run() -> dict:
    try:
        return json.loads(LAST_RUN.read_text())
    except (OSError, ValueError):
        return {}


def save_run(figures: dict) -> None:
    LAST_RUN.parent.mkdir(parents=True, exist_ok=True)
    LAST_RUN.write_text(json.dumps({**previous_run(), **figures}, indent=1))


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, stdout=subprocess.DEVNULL
    )


def verdict(
    rec: Recorder, targets: dict[str, float], min_rps: float | None = None, fig: dict | None = None
) -> list[str]:
    out = []
    for kind, limit in targets.items():
        v = rec.times.get(kind, [])
        p95 = pct(v, 95)
        out.append(
            f"  {kind} p95 {p95:.0f} ms (target < {limit:.0f} ms): {'met' if p95 < limit else 'MISSED'}"
        )
    if min_rps is not None and fig is not None:
        rps = fig.get("rps_mix", fig["rps"])
        out.append(
            f"  throughput {rps:.0f} req/s (target >= {min_rps:.0f}): {'met' if rps >= min_rps else 'MISSED'}"
        )
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
    ap.add_argument(
        "--think", default="0.5,1.5", help="min,max seconds between a person's actions (0,0: none)"
    )
    ap.add_argument(
        "--full-think",
        default="0.5,1.5;rate:160;0,0",
        help="the full scenario's runs, ';'-separated: think times MIN,MAX or rate:R (users paced "
        "to ask for R requests/s of the mix together). Default: as people think; paced at 160 req/s "
        "(the target's 150 and a margin for the run's first and last second: throughput and "
        "latency under one load); no think time (the most the server sustains)",
    )
    ap.add_argument("--users", type=int, default=50, help="users of the full scenario")
    ap.add_argument(
        "--keep-alive",
        type=int,
        default=0,
        help="gunicorn's keep-alive seconds (0, as deploy/gunicorn.conf.py: a connection per request)",
    )
    args = ap.parse_args()
    global THINK
    THINK = tuple(float(x) for x in args.think.split(","))
    full_runs = [
        ("rate", float(t[5:])) if t.startswith("rate:") else tuple(float(x) for x in t.split(","))
        for t in args.full_think.split(";")
        if t
    ]
    only = set(args.only.split(","))
    per_user = 20 if args.quick else 60
    tmp = Path(tempfile.mkdtemp(prefix="ionsieve-bench-load-"))
    print(
        f"gunicorn: {args.workers} workers x {args.threads} threads (gthread), keep-alive {args.keep_alive} s; "
        f"{os.cpu_count()} CPUs; "
        f"{IMAGES if only - {'scale'} else SCALE_DATASETS * SCALE_IMAGES:,} images; think time {THINK[0]}-{THINK[1]} s (full: "
        + "; ".join(f"{b:g} req/s" if a == "rate" else f"{a}-{b} s" for a, b in full_runs)
        + ")",
        flush=True,
    )
    summary: list[str] = []
    figures: dict[str, dict] = {}
    try:
        if "sqlite" in only:
            env = site_env(f"sqlite:///{tmp / 'bench.sqlite3'}", tmp / "media-sqlite")
            migrate(env)
            t = time.perf_counter()
            site = seed_subprocess(env, images=IMAGES, annotators=20, thumbnails=True)
            print(f"sqlite: dataset of {IMAGES:,} images made in {time.perf_counter() - t:.1f} s", flush=True)
            with served(args, env, tmp / "gunicorn-sqlite.log") as g:
                title = "SQLite, 20 users"
                lines, rec, figures[title] = labelling_scenario(title, g, site, 20, per_user, 120)
                summary += lines + verdict(rec, {"gallery": 300, "label": 100})
        if only & {"postgres", "full"}:
            psql(f"DROP DATABASE IF EXISTS {PG_DB}")
            psql(f"CREATE DATABASE {PG_DB}")
            pg_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"
            import redis

            redis.Redis.from_url(CACHE).flushdb()
            env = site_env(pg_url, tmp / "media-pg", broker_url=REDIS, DB_CONN_MAX_AGE="60", CACHE_URL=CACHE)
            migrate(env)
            t = time.perf_counter()
            site = seed_subprocess(env, images=IMAGES, annotators=50, thumbnails=True)
            print(
                f"postgres: dataset of {IMAGES:,} images made in {time.perf_counter() - t:.1f} s", flush=True
            )
            # What autovacuum does within a minute of a big ingestion; without it the planner
            # believes the dataset has 6 rows and sorts all 10,000 (26 ms instead of 3.5 ms).
            subprocess.run(["psql", pg_url, "-q", "-c", "ANALYZE"], check=True)
            with served(args, env, tmp / "gunicorn-pg.log") as g:
                if "postgres" in only:
                    title = "PostgreSQL, 20 users"
                    lines, rec, figures[title] = labelling_scenario(title, g, site, 20, per_user, 120)
                    summary += lines + verdict(rec, {"gallery": 300, "label": 100})
                for mode, value in full_runs if "full" in only else []:
                    rate = value if mode == "rate" else None
                    if rate is None:
                        THINK = (mode, value)
                    how = f"paced at {rate:g} req/s" if rate else f"think {mode:g}-{value:g} s"
                    title = f"PostgreSQL + Redis, {args.users} users browsing, {how}"
                    lines, rec, fig = browsing_scenario(title, g, site, args.users, per_user, 180, rate=rate)
                    figures[title] = fig
                    # Thinking people set the rate themselves, and users with no think time set the
                    # latency (a queue of 50): each of those runs checks the half it can show; the
                    # paced run checks both under one load.
                    thinking, queue = rate is None and THINK[1] > 0, rate is None and THINK[1] == 0
                    summary += lines + verdict(
                        rec,
                        {} if queue else {"page": 300, "api-read": 300, "thumbnail": 300, "label": 150},
                        min_rps=None if thinking else 150,
                        fig=fig,
                    )
                    if thinking or queue:
                        summary.append(
                            "  throughput: set by the users' think time here; see the paced run"
                            if thinking
                            else f"  latency: {args.users} users with no think time are a queue of "
                            f"{args.users} (latency = users / throughput); see the paced run"
                        )
        if "scale" in only:
            lines, figs = run_scale(args, tmp, per_user)
            summary += lines
            figures.update(figs)
    finally:
        if only & {"postgres", "full", "scale"}:
            with contextlib.suppress(subprocess.CalledProcessError):
                psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.quick:  # smoke runs are not a reference for the next run's ratios
        save_run(figures)
    print("\nSummary\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
