"""Where the real test data lives (`../shared/data/` beside the checkout, as on the development
machine). A clone elsewhere finds it through IONSIEVE_SHARED_DATA or the machine's copy."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data() -> Path:
    here = Path(__file__).resolve()
    candidates = [Path(os.environ["IONSIEVE_SHARED_DATA"])] if os.environ.get("IONSIEVE_SHARED_DATA") else []
    candidates += [parent / "shared" / "data" for parent in here.parents]
    candidates.append(Path("/work/shared/data"))
    for candidate in candidates:
        if (candidate / "imzml").is_dir():
            return candidate
    raise FileNotFoundError(
        "The real test data (shared/data) was not found: set IONSIEVE_SHARED_DATA to its folder."
    )


SHARED_DATA = shared_data()
