"""The step process hands freed heap memory back before dbt's process starts, and keeps its
long-lived objects out of later garbage collections."""

import gc
import sys
import weakref
from pathlib import Path

import pytest

from orchestration.memory import freeze_survivors, release_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and glibc's malloc_trim")


def _resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_freed_heap_memory_between_live_blocks_goes_back_to_the_system():
    # 64 KiB blocks sit on the heap (below glibc's mmap threshold); keeping every
    # 16th alive leaves the freed ones between live blocks, where free() never trims.
    blocks = [bytes(64 * 1024) for _ in range(6000)]
    kept = blocks[::16]
    del blocks
    before = _resident_mib()
    assert release_freed_memory()
    after = _resident_mib()
    assert before - after > 200, (before, after)   # about 350 MiB were freed
    assert len(kept) == 375


class _Node:
    def __init__(self):
        self.me = self      # a reference cycle: only the collector frees it


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


def test_objects_alive_when_frozen_are_left_out_of_collections_and_newer_garbage_is_collected(unfrozen):
    survivor, plain = _Node(), [object()]
    freeze_survivors()
    tracked = {id(o) for o in gc.get_objects()}
    assert id(survivor) not in tracked and id(plain) not in tracked
    assert gc.get_freeze_count() > 0
    later = _Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None, "a cycle made after the freeze is still collected"
    freed = weakref.ref(survivor)
    del survivor
    gc.collect()
    assert freed() is not None, "a frozen cycle is kept: the collector no longer walks it"
