"""The pure libraries (ionsieve_core/) import with neither Django nor Celery loaded.

Two checks: every module of each package is imported in a fresh interpreter (so nothing pulls
Django in at run time, directly or through another package), and no source file names a Django
app, Django or Celery in an import (so a lazy import inside a function cannot hide one).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "ionsieve_core"
PACKAGES = ["ionsieve_core.msi", "ionsieve_core.imagesets", "ionsieve_core.imaging", "ionsieve_core.ml"]
FORBIDDEN = ("django", "celery", "rest_framework", "webapp", "classifier")

IMPORT_ALL = """
import importlib, pkgutil, sys
pkg = importlib.import_module({name!r})
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    importlib.import_module(info.name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print("LOADED", loaded)
"""


@pytest.mark.parametrize("name", PACKAGES)
def test_it_imports_every_module_without_django_or_celery(name: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = IMPORT_ALL.format(name=name, forbidden=FORBIDDEN)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout, out.stdout


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_it_finds_no_django_or_app_import_in_any_source_file() -> None:
    sources = sorted(CORE.rglob("*.py"))
    assert len(sources) > 20  # the walk found the packages
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imported_roots(p) & set(FORBIDDEN))
        for p in sources
        if _imported_roots(p) & set(FORBIDDEN)
    }
    assert offenders == {}
