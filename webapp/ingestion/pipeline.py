"""The one step after a successful ingestion or picture import: the dataset's first scoring.

Called explicitly by the ingestion code (no signal): on the web and in workers it queues a
follow-up scoring Job; on the command line (inline=True) it scores in this process, so the
gallery is sorted when the command returns.
"""

from __future__ import annotations

import logging

from classifier import scoring
from webapp.datasets.models import Dataset

log = logging.getLogger(__name__)


def images_ready(dataset: Dataset, *, inline: bool = False) -> None:
    """Score the new images: the active model, else the default score."""
    if not inline:
        scoring.start_scoring(dataset.project, dataset=dataset)
        return
    try:
        scoring.score_dataset(dataset)
    except Exception:  # noqa: BLE001 - a scoring bug must not undo a good ingestion
        log.exception("scoring dataset %s failed", dataset.pk)
