"""The WSGI entry point: gunicorn webapp.wsgi:application (deploy/gunicorn.conf.py)."""

from __future__ import annotations

import gc
import os
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.template import engines
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
application = get_wsgi_application()

# gen0 is collected after this many new container objects instead of Python's 700.
GC_GEN0_THRESHOLD = 50_000


def warm_up() -> None:
    """Load now what each worker's first requests would otherwise load one by one.

    Under --preload this runs once, in gunicorn's master. The forked workers start with it,
    and so does every worker that replaces one recycled by `max_requests`. Measured in one
    fresh process, the first project page took 112 ms instead of 21 ms: the Redis client behind
    sessions was imported then. The first probability-history figure took 115 ms instead of
    9 ms: plotly imported its figure classes then.
    """
    import_module(settings.ROOT_URLCONF)  # and with it every view module
    for cache in settings.CACHES.values():
        import_string(cache["BACKEND"])
    load_templates()
    from webapp.pages import figures

    figures.warm_up()


def load_templates() -> None:
    """Compile the pages' templates into the cached template loader of each engine."""
    for engine in engines.all():
        for directory in engine.dirs:
            for path in sorted(Path(directory).rglob("*.html")):
                engine.get_template(path.relative_to(directory).as_posix())


def settle_memory() -> None:
    """Freeze what is loaded, and collect the youngest objects less often.

    Those objects live as long as the process: once frozen, no garbage collection scans them
    again, and under --preload the forked workers keep sharing those pages with the master
    instead of copying them as the collector touches them. A request allocates tens of
    thousands of objects that reference counting frees on its own; a gen0 collection every 700
    of them was about a tenth of a request's CPU (bench/README.md, "Garbage collection").
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


warm_up()
# IONSIEVE_GC_TUNING=0 keeps Python's defaults (tests that import the app set it).
if os.environ.get("IONSIEVE_GC_TUNING", "1") != "0":
    settle_memory()
