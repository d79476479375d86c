"""The README's import picture, checked: each app imports only the apps below it.

Imports inside functions count too (read from the source, not from what happens to be loaded),
so a lazy import cannot hide an upward dependency. Wiring modules (settings, urls, celery) are
outside the picture: they may import anything and nothing imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

APPS = {
    "accounts": ROOT / "webapp" / "accounts",
    "projects": ROOT / "webapp" / "projects",
    "jobs": ROOT / "webapp" / "jobs",
    "datasets": ROOT / "webapp" / "datasets",
    "collections": ROOT / "webapp" / "collections",
    "classifier": ROOT / "classifier",
    "ingestion": ROOT / "webapp" / "ingestion",
    "pages": ROOT / "webapp" / "pages",
}
# Each app and the apps it may import (the README's picture, top to bottom).
ALLOWED = {
    "accounts": set(),
    "projects": {"accounts"},
    "jobs": {"projects"},
    "datasets": {"projects", "jobs"},
    "collections": {"datasets", "projects", "jobs"},
    "classifier": {"collections", "datasets", "projects", "jobs"},
    "ingestion": {"classifier", "collections", "datasets", "projects", "jobs"},
    "pages": {"accounts", "projects", "jobs", "datasets", "collections", "classifier", "ingestion"},
}
WIRING = {"webapp.settings", "webapp.urls", "webapp.api_urls", "webapp.celery", "webapp.wsgi"}


def app_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "classifier":
        return "classifier"
    if parts[0] == "webapp" and len(parts) > 1 and parts[1] in APPS:
        return parts[1]
    return None


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources(app: str) -> list[Path]:
    return [p for p in APPS[app].rglob("*.py") if "migrations" not in p.parts]


def test_it_finds_every_app_import_within_the_layers() -> None:
    upward: dict[str, list[str]] = {}
    for app in APPS:
        for path in sources(app):
            bad = sorted(
                m
                for m in imports_of(path)
                if (other := app_of(m)) and other != app and other not in ALLOWED[app]
            )
            if bad:
                upward[str(path.relative_to(ROOT))] = bad
    assert upward == {}


def test_it_finds_no_app_importing_the_wiring() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imports_of(path) & WIRING)
        for app in APPS
        for path in sources(app)
        if imports_of(path) & WIRING
    }
    assert offenders == {}


def test_it_reads_the_sources_it_checks() -> None:
    # The checks above pass trivially on an empty walk; this one fails if the layout moved.
    assert all(len(sources(app)) >= 3 for app in APPS)
    assert "classifier" in {app_of(m) for m in imports_of(APPS["ingestion"] / "pipeline.py")}
