from __future__ import annotations

from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    label = "classifier"

    def ready(self) -> None:
        from celery.signals import worker_process_init, worker_ready

        from classifier import receivers, tasks  # noqa: F401  (signal handlers, Celery tasks by name)

        # Each worker process loads the default scorer (and scikit-learn, scikit-image) when it
        # starts, and keeps it: the first dataset after a start does not wait for the imports.
        worker_process_init.connect(warm_default_scorer, weak=False)
        worker_ready.connect(warm_default_scorer, weak=False)  # solo and threads pools


def warm_default_scorer(sender=None, **kwargs) -> None:
    import threading

    def warm() -> None:
        import numpy as np

        from ionsieve_core.ml.coldstart import context_scores, default_scorer

        default_scorer()
        rng = np.random.default_rng(0)
        context_scores(rng.random((2, 8, 8), np.float32), None)  # imports KMeans and filters now

    # In a thread: the worker takes tasks at once; a task arriving meanwhile imports the same.
    threading.Thread(target=warm, daemon=True, name="ionsieve-warm-scorer").start()
