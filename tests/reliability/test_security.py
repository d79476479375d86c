"""Security checks: login throttling, CSRF on every form, production settings, files behind
permission checks, no user-supplied path reaching the filesystem."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import Resolver404, resolve
from rest_framework.test import APIClient

from tests.datasets.helpers import synthetic
from tests.factories import PASSWORD, UserFactory
from tests.reliability.conftest import make_world
from tests.reliability.test_permissions import ROUTES, url_for

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- logins
def test_it_locks_out_repeated_failed_logins(db, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    victim, bystander = UserFactory(), UserFactory()
    c = Client()
    for _ in range(5):
        r = c.post("/accounts/login/", {"username": victim.username, "password": "wrong"})
        assert r.status_code in (200, 429)
        assert "_auth_user_id" not in c.session
    # Locked now: even the right password is refused.
    r = c.post("/accounts/login/", {"username": victim.username, "password": PASSWORD})
    assert r.status_code in (403, 429)
    assert "_auth_user_id" not in c.session
    # The lock is per username + address: someone else still logs in.
    r = Client().post("/accounts/login/", {"username": bystander.username, "password": PASSWORD})
    assert r.status_code == 302


def test_it_locks_out_api_password_guessing_through_the_login_form_only(db, settings):
    """The API takes sessions and tokens, never a password: nothing to guess there."""
    settings.AXES_ENABLED = True
    user = UserFactory()
    import base64

    basic = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    r = Client().get("/api/projects/", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert r.status_code in (401, 403)


# ---------------------------------------------------------------- CSRF
def test_it_enforces_csrf_on_every_form_and_session_api_call(db):
    w = make_world()
    c = Client(enforce_csrf_checks=True)
    c.force_login(w.users["owner"])
    wrong = []
    for route, name in ROUTES:
        if name in ("login",):
            continue  # checked below, logged out
        url = url_for(route, name, w)
        for method in ("post", "put", "patch", "delete"):
            if method == "post":
                r = c.post(url, {})
            else:
                r = getattr(c, method)(url, "{}", content_type="application/json")
            if r.status_code not in (403, 405):
                wrong.append(f"{method.upper()} {url} -> {r.status_code}")
    assert not wrong, "requests without a CSRF token were not refused:\n" + "\n".join(wrong)
    # Logged out: the login and sign-up forms refuse a POST without the token too.
    anon = Client(enforce_csrf_checks=True)
    for url in ("/accounts/login/", "/accounts/signup/"):
        assert anon.post(url, {"username": "x", "password": "y"}).status_code == 403, url


def test_it_puts_a_csrf_token_in_every_form(db):
    w = make_world()
    c = Client()
    for url in ("/accounts/login/", "/accounts/signup/"):
        assert "csrfmiddlewaretoken" in c.get(url).content.decode(), url
    c.force_login(w.users["owner"])
    slug = w.project.slug
    for url in (
        "/projects/new/",
        f"/projects/{slug}/members/",
        f"/projects/{slug}/delete/",
        "/accounts/profile/",
        "/accounts/password/",
    ):
        body = c.get(url).content.decode()
        assert "<form" in body and "csrfmiddlewaretoken" in body, url


# ---------------------------------------------------------------- production settings
def run_settings(env: dict, *args: str) -> subprocess.CompletedProcess:
    full = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        )
    }
    full.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120
    )


PROD = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "ionsieve.example.org"}


def test_it_passes_check_deploy_with_production_settings(tmp_path):
    r = run_settings(
        {**PROD, "IONSIEVE_VAR_DIR": str(tmp_path)}, "check", "--deploy", "--fail-level", "WARNING"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


def test_it_collects_static_files_for_production(tmp_path):
    """whitenoise's manifest storage refuses a file that points at a missing one (a source map
    of vendored JavaScript, say): that would stop a production install at collectstatic."""
    r = run_settings(
        {**PROD, "IONSIEVE_VAR_DIR": str(tmp_path), "STATIC_ROOT": str(tmp_path / "static")},
        "collectstatic",
        "--noinput",
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (
        list((tmp_path / "static").rglob("tus.min.*.js"))
        and (tmp_path / "static" / "staticfiles.json").exists()
    )


def test_it_uses_secure_cookies_and_https_in_production(tmp_path):
    code = (
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, s.DEBUG, "
        "s.MEDIA_URL, s.X_FRAME_OPTIONS)"
    )
    r = run_settings({**PROD, "IONSIEVE_VAR_DIR": str(tmp_path)}, "shell", "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].split() == [
        "True",
        "True",
        "True",
        "True",
        "True",
        "False",
        "None",
        "DENY",
    ]


def test_it_refuses_production_without_a_secret_key(tmp_path):
    env = {k: v for k, v in PROD.items() if k != "SECRET_KEY"}
    r = run_settings(
        {**env, "IONSIEVE_VAR_DIR": str(tmp_path)}, "check", "--deploy", "--fail-level", "WARNING"
    )
    assert r.returncode != 0


# ---------------------------------------------------------------- files behind permission checks
def test_it_serves_no_media_by_url(db, client):
    w = make_world()
    assert django_settings.MEDIA_URL in (None, "")
    client.force_login(w.users["owner"])
    media = Path(django_settings.MEDIA_ROOT)
    thumb = w.dataset.thumb_path(w.image.index)
    assert thumb.exists()
    rel = thumb.relative_to(media).as_posix()
    for url in (
        f"/media/{rel}",
        f"/{rel}",
        f"/static/../media/{rel}",
        f"/static/%2e%2e/media/{rel}",
        f"/static/{rel}",
        "/media/",
        f"/var/media/{rel}",
    ):
        r = client.get(url)
        assert r.status_code == 404, url
        assert not r.get("Content-Type", "").startswith("image/"), url
    for url in (f"/media/{rel}", f"/{rel}"):
        with pytest.raises(Resolver404):
            resolve(url)


def test_it_keeps_files_and_arrays_from_non_members(db):
    w = make_world()
    outsider = APIClient()
    outsider.force_login(w.users["outsider"])
    viewer = APIClient()
    viewer.force_login(w.users["viewer"])
    im, ds = w.image.pk, w.dataset.pk
    urls = [
        f"/api/images/{im}/thumbnail/",
        f"/api/images/{im}/thumbnail/?r=1",
        f"/api/images/{im}/data/",
        f"/api/datasets/{ds}/spectrum/",
        f"/api/images/{im}/",
        f"/api/datasets/{ds}/images/",
        f"/images/{im}/",
        f"/datasets/{ds}/gallery/",
    ]
    for url in urls:
        assert outsider.get(url).status_code == 404, url
        assert viewer.get(url).status_code == 200, url
    assert viewer.get(urls[0])["Content-Type"] == "image/png"
    assert APIClient().get(urls[0]).status_code in (401, 403)


# ---------------------------------------------------------------- user-supplied paths
def files_outside(root: Path, media: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and media not in p.parents]


def test_it_keeps_user_supplied_names_out_of_paths(db, tmp_path, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from webapp.datasets.models import Dataset

    w = make_world()
    media = Path(django_settings.MEDIA_ROOT)
    truth = synthetic(tmp_path / "src", seed=4)
    before = set(files_outside(tmp_path, media))
    api = APIClient()
    api.force_login(w.users["owner"])
    imzml = SimpleUploadedFile("../../../etc/passwd.imzML", Path(truth.imzml_path).read_bytes())
    ibd = SimpleUploadedFile("../../../../tmp/evil.ibd", Path(truth.ibd_path).read_bytes())
    mz = SimpleUploadedFile("../../mz.csv", b"mz,name\n200.0,a\n")
    with django_capture_on_commit_callbacks(execute=False):
        r = api.post(
            f"/api/projects/{w.project.slug}/datasets/",
            {"imzml": imzml, "ibd": ibd, "mz_list": mz, "name": "../../../etc/cron.d/x"},
            format="multipart",
        )
    assert r.status_code == 202, r.content
    ds = Dataset.objects.get(pk=r.json()["id"])
    assert ds.directory == media / "datasets" / str(ds.pk)
    assert sorted(p.name for p in ds.source_dir.iterdir()) == ["data.ibd", "data.imzML", "mz_list.csv"]
    assert set(files_outside(tmp_path, media)) == before
    assert not Path("/etc/cron.d/x").exists()
    assert all(media in p.parents for p in media.rglob("*") if p.is_file())
    # The same names through the command line: the name is a label, never a path.
    from django.core.management import call_command

    call_command("import_imzml", truth.imzml_path, project=w.project.slug, name="../../../../escape", top=4)
    made = Dataset.objects.get(name="../../../../escape")
    assert made.directory == media / "datasets" / str(made.pk)
    assert set(files_outside(tmp_path, media)) == before
