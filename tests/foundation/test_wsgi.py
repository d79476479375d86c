"""The WSGI entry point loads what requests need and settles the server process's memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import gc, sys, json; import webapp.wsgi as w; "
    "print(json.dumps([gc.get_threshold(), gc.get_freeze_count(), 'webapp.urls' in sys.modules]))"
)
WARM = (
    "import json; import webapp.wsgi; from django.template import engines; "
    "from webapp.pages import figures; "
    "loader = engines['django'].engine.template_loaders[0]; "
    "print(json.dumps([type(loader).__name__, sorted(loader.get_template_cache), "
    "figures._history_layout.cache_info().currsize]))"
)


def probe(tuning: str, code: str = PROBE) -> list:
    env = {**os.environ, "IONSIEVE_GC_TUNING": tuning, "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_it_freezes_the_loaded_app_and_collects_less_often():
    threshold, frozen, urls_loaded = probe("1")
    default = probe("0")[0]
    assert threshold == [50_000, default[1], default[2]]
    # The URLconf (and so every view module) is loaded and frozen before the first request.
    assert urls_loaded and frozen > 10_000


def test_it_keeps_pythons_collector_when_asked():
    threshold, frozen, urls_loaded = probe("0")
    assert threshold[0] == 700 and frozen == 0
    assert urls_loaded  # the warm-up does not depend on the collector's settings


def test_it_compiles_every_page_template_and_builds_plotlys_layouts_before_the_first_request():
    loader, cached, layouts = probe("0", WARM)
    assert loader == "Loader"  # django.template.loaders.cached
    pages = sorted(p.relative_to(ROOT / "templates").as_posix() for p in (ROOT / "templates").rglob("*.html"))
    assert pages and set(pages) <= set(cached)
    assert layouts == 1
