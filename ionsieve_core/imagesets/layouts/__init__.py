"""Finding the datasets, images and labels in a folder of pictures, without writing anything.

Three layouts:

- ``gs`` (METASPACE off-sample gold standard): ``<dataset>/<label>/<image>.png``, or the root
  itself one dataset: ``<label>/<image>.png``. Folder names are the labels.
- ``flat``: folders of images, labels (optional) from a CSV ``file,label``. The images of one
  folder form one dataset named after the folder.
- ``channels`` (multi-channel microscopy, as in the Human Protein Atlas): ``<id>_<channel>.png``
  files grouped into one item per id; labels from a CSV ``Id,Target``.

Modules: ``plan`` (the plan types), ``scan`` (the folder walk), ``detect`` (which layout),
``labels_csv`` (labels files), ``gs``, ``flat`` and ``channels`` (one planner each), ``common``
(what the planners share) and ``planner`` (`plan_import`, which ties them together).
"""

from __future__ import annotations

from ionsieve_core.imagesets.layouts.channels import HPA_ORDER, KNOWN_CHANNELS, detected_channel_order
from ionsieve_core.imagesets.layouts.common import GENERIC_FOLDERS, UNLABELLED_FOLDERS, natural_key
from ionsieve_core.imagesets.layouts.detect import detect_layout
from ionsieve_core.imagesets.layouts.labels_csv import FILE_COLUMNS, LABEL_COLUMNS, MAX_CSV_BYTES, read_text
from ionsieve_core.imagesets.layouts.plan import LAYOUTS, DatasetPlan, ImageItem, ImportPlan
from ionsieve_core.imagesets.layouts.planner import plan_import

__all__ = [
    "FILE_COLUMNS",
    "GENERIC_FOLDERS",
    "HPA_ORDER",
    "KNOWN_CHANNELS",
    "LABEL_COLUMNS",
    "LAYOUTS",
    "MAX_CSV_BYTES",
    "UNLABELLED_FOLDERS",
    "DatasetPlan",
    "ImageItem",
    "ImportPlan",
    "detect_layout",
    "detected_channel_order",
    "natural_key",
    "plan_import",
    "read_text",
]
