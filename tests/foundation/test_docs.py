"""The user guide's pictures exist and come from the browser tests (make screenshots)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_shows_only_pictures_the_browser_tests_take():
    from scripts.guide_screenshots import SHOTS

    guide = (ROOT / "docs" / "user-guide.md").read_text()
    shown = re.findall(r"\]\(img/([^)]+)\)", guide)
    assert len(shown) >= 8
    assert [s for s in shown if not (ROOT / "docs" / "img" / s).exists()] == []
    assert set(shown) <= set(SHOTS)
    taken = set()
    for test in (ROOT / "tests" / "browser").glob("test_*.py"):
        taken |= set(re.findall(r'screenshot\(page, f?"([^"]+)"', test.read_text()))
    taken = {t.replace("{scheme}", "dark") for t in taken}
    assert set(SHOTS) <= taken, set(SHOTS) - taken
