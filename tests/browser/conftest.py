"""Playwright (sync API) with Debian's Chromium against pytest-django's live server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def _media_url_for_live_server():
    """settings.MEDIA_URL is None (media only through views), which Django's live server
    cannot parse; a URL on another host makes it serve no media by URL, as in production."""
    from django.conf import settings

    old = settings.MEDIA_URL
    settings.MEDIA_URL = "http://media.invalid/"
    yield
    settings.MEDIA_URL = old


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    # Playwright's sync API runs an event loop in this thread; the tests' ORM calls are still safe.
    # Set only while browsers run, so it never leaks into other tests' subprocesses.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            yield b
            b.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def new_page(browser, live_server):
    contexts = []

    def make():
        ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
        # Generous: on a loaded 2-core CI machine a page can take seconds; success never waits for it.
        ctx.set_default_timeout(30_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    return path
