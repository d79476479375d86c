"""A real Celery worker process on the test database, on either supported set-up.

The set-up comes from the environment, and `make test-integration` runs the suite twice:
- embedded: the default that `make run` starts, SQLite (a file, WAL) + kombu's filesystem broker
  (no DATABASE_URL, CELERY_BROKER_URL=filesystem://);
- server: PostgreSQL + Redis (DATABASE_URL=postgres://..., CELERY_BROKER_URL=redis://...).
Tests that only make sense on one of them ask for it with `needs_backend("server")`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED, SERVER = "embedded", "server"


def backend() -> str:
    broker, vendor = settings.CELERY_BROKER_URL, connection.vendor
    if broker.startswith("filesystem://") and vendor == "sqlite":
        return EMBEDDED
    if broker.startswith("redis://") and vendor == "postgresql":
        return SERVER
    pytest.fail(
        f"integration tests run on SQLite + filesystem:// or on PostgreSQL + redis:// (here {vendor} + "
        f"{broker.split(':', 1)[0]}); use `make test-integration`"
    )


def needs_backend(name: str) -> None:
    if backend() != name:
        pytest.skip(f"runs in the {name} pass of `make test-integration`")


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"  # the test database file (never in memory: see settings)
    return (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


class Worker:
    def __init__(self, media_root: Path, log_path: Path, broker_dir: Path | None = None):
        self.media_root = media_root
        self.log_path = log_path
        self.broker_dir = broker_dir
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url(),
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            MEDIA_ROOT=str(self.media_root),
            DJANGO_SETTINGS_MODULE="webapp.settings",
            PYTHONUNBUFFERED="1",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        if self.broker_dir is not None:
            env["IONSIEVE_BROKER_DIR"] = str(self.broker_dir)
        return env

    def start(self, queues: str = "ingest,train,predict", concurrency: int = 1) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process for its lifetime
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "webapp",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def use_broker_folder(folder: Path, settings) -> None:
    """Point this process's producer (and the watchdog's folder check) at a private broker folder."""
    from webapp.celery import app

    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    app.conf.broker_transport_options = options
    app._pool = None  # producers reconnect with the new folders
    app.amqp._producer_pool = None


@pytest.fixture
def worker(transactional_db, settings, tmp_path):
    """A worker (not started yet) with an empty queue: each test gets its own broker folder
    (embedded; a developer's `make run` worker never takes our messages) or a flushed Redis db."""
    from webapp.celery import app

    broker_dir = None
    if backend() == EMBEDDED:
        broker_dir = tmp_path / "broker"
        old = dict(app.conf.broker_transport_options or {})
        use_broker_folder(broker_dir, settings)
    else:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no messages from earlier runs
    w = Worker(Path(settings.MEDIA_ROOT), tmp_path / "worker.log", broker_dir)
    yield w
    w.stop()
    if broker_dir is not None:
        app.conf.broker_transport_options = old
        app._pool = None
        app.amqp._producer_pool = None


def wait_for(predicate, timeout: float = 120, what: str = "condition", worker: Worker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(
        f"timed out waiting for {what}" + (f"\nworker log:\n{worker.log()}" if worker else "")
    )
