"""The step process hands freed heap memory back before dbt's process starts."""

import sys
from pathlib import Path

import pytest

from orchestration.memory import release_freed_memory

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
