"""A live IonSieve on loopback for concurrency tests and the load benchmark.

`seed()` fills whatever database Django is configured with (owner, annotators with API
tokens, a project, a READY dataset without the MSI pipeline). `Gunicorn` serves the app from
a subprocess on a free 127.0.0.1 port. `python -m tests.reliability.livesite seed ...` runs
seed() in a fresh process against the DATABASE_URL/MEDIA_ROOT in its environment and prints
the result as JSON (used for SQLite files, which the test process does not own).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_env(database_url: str, media_root: Path, broker_url: str | None = None, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        MEDIA_ROOT=str(media_root),
        DJANGO_SETTINGS_MODULE="webapp.settings",
        PYTHONUNBUFFERED="1",
        AXES_ENABLED="0",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(ROOT),
    )
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    env.update(extra)
    return env


def migrate(env: dict) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )


def seed_subprocess(
    env: dict, images: int, annotators: int, datasets: int = 1, thumbnails: bool = False
) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.livesite",
            "seed",
            str(images),
            str(annotators),
            str(datasets),
            "1" if thumbnails else "0",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def seed(
    images: int, annotators: int, datasets: int = 1, thumbnails: bool = False, prefix: str = "load"
) -> dict:
    """Rows for a live site; returns ids and API tokens (plain data, JSON-able)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from tests.gallery_data import make_ready_dataset
    from webapp.projects import services

    User = get_user_model()

    def make_user(name: str):
        u = User.objects.create(username=name)
        u.set_unusable_password()
        u.save()
        return u

    owner = make_user(f"{prefix}-owner")
    project = services.create_project(owner, f"{prefix} project")
    people = []
    for i in range(annotators):
        u = make_user(f"{prefix}-annotator{i}")
        services.set_member(project, u.username, "annotator")
        people.append(u)
    ds_ids = []
    for d in range(datasets):
        ds = make_ready_dataset(
            project, n=images, shape=(16, 20), name=f"dataset {d}", seed=d, user=owner, thumbnails=thumbnails
        )
        ds_ids.append(ds.pk)
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from webapp.datasets.models import IonImage

    def session_for(u) -> str:
        s = SessionStore()
        s[SESSION_KEY], s[HASH_SESSION_KEY] = str(u.pk), u.get_session_auth_hash()
        s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        s.create()
        return s.session_key

    image_ids = list(
        IonImage.objects.filter(dataset_id__in=ds_ids).order_by("pk").values_list("pk", flat=True)
    )
    return {
        "slug": project.slug,
        "classes": project.classes,
        "datasets": ds_ids,
        "images": image_ids,
        "owner": Token.objects.create(user=owner).key,
        "tokens": [Token.objects.create(user=u).key for u in people],
        "users": [u.pk for u in people],
        "sessions": [session_for(u) for u in people],
    }


class Gunicorn:
    """gunicorn serving webapp.wsgi on 127.0.0.1:<free port>; a context manager."""

    def __init__(
        self,
        env: dict,
        workers: int = 2,
        threads: int = 4,
        log_path: Path | None = None,
        keepalive: int = 0,
    ):
        self.env, self.workers, self.threads, self.keepalive = env, workers, threads, keepalive
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gunicorn:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "webapp.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "--worker-class",
                "gthread",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                # 0 as deployed (deploy/gunicorn.conf.py): a connection per request, so each
                # request goes to a free worker, not to the one holding the client's connection.
                "--keep-alive",
                str(self.keepalive),
                "--log-level",
                "warning",
                "--preload",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); log: {self.log()}")
            try:
                if requests.get(self.url + "/accounts/login/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("gunicorn did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace")[-3000:]
            if self.log_path and self.log_path.exists()
            else ""
        )


def _main(argv: list[str]) -> None:
    import django

    django.setup()
    if argv[0] == "seed":
        images, annotators, datasets, thumbs = (int(a) for a in argv[1:5])
        print(json.dumps(seed(images, annotators, datasets, thumbnails=bool(thumbs))))


if __name__ == "__main__":
    _main(sys.argv[1:])
