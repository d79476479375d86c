"""A real Celery worker process on the test database, through Redis.

Run with DATABASE_URL pointing at PostgreSQL and CELERY_BROKER_URL at Redis (make test-integration).
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


def _require_services() -> None:
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("integration tests need CELERY_BROKER_URL=redis://... (use `make test-integration`)")
    if connection.vendor != "postgresql":
        pytest.fail("integration tests need DATABASE_URL=postgres://... (use `make test-integration`)")


class Worker:
    def __init__(self, media_root: Path, log_path: Path):
        self.media_root = media_root
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            MEDIA_ROOT=str(self.media_root),
            DJANGO_SETTINGS_MODULE="webapp.settings",
            PYTHONUNBUFFERED="1",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        return env

    def start(self, queues: str = "ingest,train,predict", concurrency: int = 1) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", queues, "--concurrency",
             str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
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


@pytest.fixture
def worker(transactional_db, settings, tmp_path):
    _require_services()
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no messages from earlier runs
    w = Worker(Path(settings.MEDIA_ROOT), tmp_path / "worker.log")
    yield w
    w.stop()


def wait_for(predicate, timeout: float = 120, what: str = "condition", worker: Worker | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}" + (f"\nworker log:\n{worker.log()}" if worker else ""))
