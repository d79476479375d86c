"""Reading labelled image collections (folders or .zip archives) safely, and writing them back.

Pure Python (numpy, Pillow, tifffile, stdlib): no Django here, so the same code serves the
import service, the management command, scripts and tests.

- ``archive.safe_extract``: unpack an uploaded .zip, refusing anything unsafe.
- ``layouts.plan_import``: find the datasets, images and labels in a folder (writes nothing).
- ``images.read_image``: one PNG/TIFF file as a float32 array.
- ``writer``: write datasets back in any of the three layouts (export).
"""

from __future__ import annotations

from ionsieve_core.imagesets.errors import ImageSetError

__all__ = ["ImageSetError"]
