"""Reading stacks a slab at a time (ionsieve_core/imaging/slabs.py): a memory-mapped stack's
pages leave the process's RSS once read, and nothing read changes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ionsieve_core.imaging.slabs import release_pages, slab_size


def _rss_file_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


def test_it_sizes_slabs_by_values_per_image() -> None:
    assert slab_size((500, 250, 400), values=1_000_000) == 10
    assert slab_size((3, 2000, 2000), values=1_000_000) == 1  # never an empty slab
    assert slab_size((7,), values=5) == 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS read from /proc")
def test_it_drops_read_pages_of_a_memory_map_from_the_rss(tmp_path: Path) -> None:
    stack = np.random.default_rng(0).random((16, 512, 1024), dtype=np.float32)  # 32 MiB
    np.save(tmp_path / "s.npy", stack)
    mapped = np.load(tmp_path / "s.npy", mmap_mode="r")
    before = _rss_file_kib()
    total = float(np.asarray(mapped, dtype=np.float64).sum())  # touches every page
    grown = _rss_file_kib() - before
    for s in range(0, 16, 4):
        release_pages(np.asarray(mapped)[s : s + 4])  # through views, as callers pass them
    dropped = before + grown - _rss_file_kib()
    assert grown > 24 * 1024 and dropped > 24 * 1024, (grown, dropped)
    # The data are read again from the page cache, unchanged.
    assert float(np.asarray(mapped, dtype=np.float64).sum()) == total
    np.testing.assert_array_equal(mapped, stack)


def test_it_leaves_arrays_and_copy_on_write_maps_alone(tmp_path: Path) -> None:
    a = np.arange(4096 * 4, dtype=np.float32).reshape(4, 4096)
    release_pages(a)  # not a map: nothing to do
    release_pages(a[:0])
    np.save(tmp_path / "a.npy", a)
    cow = np.load(tmp_path / "a.npy", mmap_mode="c")
    cow[1] = -1  # written only in this process's copy of the pages
    release_pages(cow)
    assert (cow[1] == -1).all() and (cow[0] == a[0]).all()
