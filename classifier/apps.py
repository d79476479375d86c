from __future__ import annotations

from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "classifier"
    label = "classifier"

    def ready(self) -> None:
        from celery.signals import worker_process_init, worker_ready

        from classifier import receivers, tasks  # noqa: F401  (signal handlers, Celery tasks by name)

        # Each worker process loads the default score's model (its numpy plan)
        # when it starts, and keeps it: the first dataset after a start does not wait for the imports.
        worker_process_init.connect(warm_default_score, weak=False)
        worker_ready.connect(warm_default_score, weak=False)  # solo and threads pools


def warm_default_score(sender=None, **kwargs) -> None:
    import threading

    def warm() -> None:
        import numpy as np

        from ionsieve_core.ml.bundle import default_score_model
        from ionsieve_core.ml.default_score import context_scores

        default_score_model()
        rng = np.random.default_rng(0)
        context_scores(rng.random((2, 8, 8), np.float32), None)  # the first call's imports, now

    # In a thread: the worker takes tasks at once; a task arriving meanwhile imports the same.
    threading.Thread(target=warm, daemon=True, name="ionsieve-warm-default-score").start()
