"""Reactions to dataset events: score new datasets, retrain after enough new labels."""
from __future__ import annotations

import logging

from django.conf import settings
from django.dispatch import receiver

from webapp.datasets.signals import dataset_ready, labels_changed
from webapp.jobs.models import Job

log = logging.getLogger(__name__)


@receiver(dataset_ready)
def score_new_dataset(sender, dataset, inline: bool = False, **kwargs) -> None:
    from classifier import services

    if inline:
        try:
            services.score_dataset(dataset)
        except Exception:  # noqa: BLE001 - a scoring bug must not undo a good ingestion
            log.exception("scoring dataset %s failed", dataset.pk)
    else:
        services.start_scoring(dataset.project, dataset=dataset)


@receiver(labels_changed)
def maybe_retrain(sender, project, count: int = 0, **kwargs) -> None:
    threshold = settings.IONSIEVE_AUTO_RETRAIN_LABELS
    if threshold <= 0:
        return
    from classifier import services
    from webapp.datasets.models import IonImage

    active = project.model_versions.filter(is_active=True).first()
    labelled = IonImage.objects.filter(dataset__project=project).exclude(consensus__isnull=True).count()
    since = labelled - (active.label_total if active else 0)
    busy = project.jobs.filter(kind=Job.Kind.TRAIN, status__in=Job.ACTIVE).exists()
    if since >= threshold and not busy:
        services.start_training(project, user=None)
