"""Regenerate ionsieve_core/imaging/colormaps.npy from matplotlib (dev only: matplotlib comes with imzy).

Run once when a colour map is added: `.venv/bin/python scripts/make_colormaps.py`. The app reads
the .npy and never imports matplotlib. The four maps are matplotlib's own 256-entry tables
(viridis, inferno, magma: CC0; turbo: Apache-2.0, Google).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ionsieve_core.imaging.colormaps import EMBEDDED, LUT_FILE  # noqa: E402


def main() -> int:
    from matplotlib import colormaps

    tables = []
    for name in EMBEDDED:
        cmap = colormaps[name]
        assert cmap.N == 256, f"{name} has {cmap.N} entries"
        tables.append(np.asarray(cmap(np.arange(256)))[:, :3])
    np.save(LUT_FILE, np.stack(tables).astype(np.float64))
    print(f"wrote {LUT_FILE} ({', '.join(EMBEDDED)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
