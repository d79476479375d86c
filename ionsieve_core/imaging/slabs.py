"""Reading a (k, h, w) image stack a slab of images at a time, memory-mapped files included.

A stack opened with `np.load(..., mmap_mode="r")` is read through the process's map of the
file, and every page read stays counted in the process's RSS until the map is closed: a pass
over a 4 GB stack shows as 4 GB of resident memory although the kernel may drop those pages
at will (they are page cache). `release_pages` drops a finished slab's pages from the map, as
`ionsieve_core.msi.extract` does for the .ibd; the data stay in the page cache and are read
again from there if asked for.
"""

from __future__ import annotations

import mmap

import numpy as np

# Values per slab: ~16 MB of float32, a few scratch copies of which stay in the CPU caches.
SLAB_VALUES = 4 << 20


def slab_size(shape: tuple[int, ...], values: int | None = None) -> int:
    """How many images of a stack of `shape` (images along the first axis) make a slab of
    about `values` values (default SLAB_VALUES, read at call time: tests make it small)."""
    values = SLAB_VALUES if values is None else values
    per_image = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    return max(1, values // max(1, per_image))


def _shared_map(a: np.ndarray) -> mmap.mmap | None:
    """The read-only file map under `a`, if any (through views: np.asarray, slices)."""
    obj = a
    while obj is not None:
        if isinstance(obj, np.memmap):
            # Only a read-only map: dropping pages of a private (copy-on-write, mode "c") map
            # would lose what was written to them.
            mm = getattr(obj, "_mmap", None)
            return mm if getattr(obj, "mode", None) in ("r", "readonly") else None
        obj = getattr(obj, "base", None)
    return None


def release_pages(a: np.ndarray) -> None:
    """Drop the pages that hold `a` (a view of a read-only memory map) from this process's
    map; nothing for any other array. Call it once `a` has been copied or used."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    mm = _shared_map(a) if isinstance(a, np.ndarray) else None
    if mm is None or advice is None or not hasattr(mm, "madvise") or a.size == 0:
        return
    start = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    lo, hi = np.lib.array_utils.byte_bounds(a)
    lo, hi = lo - start, hi - start
    if lo < 0 or hi > len(mm):  # not inside this map after all
        return
    page = mmap.PAGESIZE
    lo += -lo % page  # whole pages only: a neighbouring slab may still be read
    hi -= hi % page
    if hi > lo:
        mm.madvise(advice, lo, hi - lo)
