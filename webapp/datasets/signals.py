"""Signals other apps listen to, so that datasets never import the classifier."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after labels changed in a project. Arguments: project, count.
labels_changed = Signal()
