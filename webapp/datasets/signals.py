"""Signals other apps listen to, so that datasets never import the classifier."""

from __future__ import annotations

from django.dispatch import Signal

# Sent when a dataset's images are ready (ingested or imported). Arguments: dataset,
# inline (True: score in this process now, as the command line does; False: queue it).
dataset_ready = Signal()
# Sent after labels changed in a project. Arguments: project, count.
labels_changed = Signal()
