"""The WSGI entry point settles the server process's memory once the app is loaded."""

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


def probe(tuning: str) -> list:
    env = {**os.environ, "IONSIEVE_GC_TUNING": tuning, "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
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
    assert threshold[0] == 700 and frozen == 0 and not urls_loaded
