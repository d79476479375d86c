from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "webapp.jobs"
    label = "jobs"

    def ready(self) -> None:
        from celery.signals import worker_ready

        worker_ready.connect(start_watchdog, weak=False)


def start_watchdog(sender=None, **kwargs) -> None:
    from webapp.jobs.dispatch import Watchdog

    Watchdog().start()
