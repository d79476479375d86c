"""The WSGI entry point: gunicorn webapp.wsgi:application (deploy/gunicorn.conf.py)."""

from __future__ import annotations

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
application = get_wsgi_application()

# gen0 is collected after this many new container objects instead of Python's 700.
GC_GEN0_THRESHOLD = 50_000


def settle_memory() -> None:
    """Load the URLconf (and with it every view module) now, then freeze what is loaded.

    Those objects live as long as the process: once frozen, no garbage collection scans them
    again, and under --preload the forked workers keep sharing those pages with the master
    instead of copying them as the collector touches them. A request allocates tens of
    thousands of objects that reference counting frees on its own; a gen0 collection every 700
    of them was about a tenth of a request's CPU (bench/README.md, "Garbage collection").
    """
    import_module(settings.ROOT_URLCONF)
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


# IONSIEVE_GC_TUNING=0 keeps Python's defaults (tests that import the app set it).
if os.environ.get("IONSIEVE_GC_TUNING", "1") != "0":
    settle_memory()
