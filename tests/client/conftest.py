"""The live server needs a parseable MEDIA_URL: reuse the browser tests' fixture."""

from __future__ import annotations

from tests.browser.conftest import _media_url_for_live_server  # noqa: F401  (autouse)
