"""The one exception type the MSI package raises for bad input."""

from __future__ import annotations


class MSIError(Exception):
    """A problem with an uploaded dataset, worded for the person who uploaded it.

    The message is one plain sentence (no stack-trace jargon) because the web app shows it
    verbatim on the dataset page.
    """
