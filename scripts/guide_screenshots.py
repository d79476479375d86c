"""Copy the browser tests' screenshots that docs/user-guide.md shows into docs/img/, as small
palette PNGs. Run by `make screenshots` after the browser tests."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHOTS = [
    "project.png",
    "upload-resumed.png",
    "gallery.png",
    "gallery-yeast.png",
    "gallery-dark.png",
    "label-next.png",
    "image.png",
    "review.png",
    "label-history.png",
    "stuck-job.png",
]


def main() -> int:
    src, out = ROOT / "test-artifacts", ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    missing = [name for name in SHOTS if not (src / name).exists()]
    if missing:
        print(f"missing screenshots (run the browser tests first): {', '.join(missing)}", file=sys.stderr)
        return 1
    for name in SHOTS:
        im = Image.open(src / name).convert("RGB")
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out / name, optimize=True)
        print(f"docs/img/{name}: {(out / name).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
