"""Give memory this process has freed back to the system before dbt needs it.

The Dagster run executes its Python steps in one process, and dbt with its
own DuckDB buffers after them (in that process, or in a subprocess with
``CQI_DBT_SUBPROCESS=1``). glibc keeps memory that Python, NumPy and DuckDB have
freed inside the process (between live allocations, where its automatic
trimming does not reach), so after fitting the risk models of a national
registry the step process still held gigabytes it no longer used while dbt
(then a subprocess) took its own: the two together went over the 8 GiB budget of the L
benchmark (benchmarks/results/L.json at 4a3de25: 8.45 GiB in the mart build).
``malloc_trim`` returns those free pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Collect unreachable Python objects and return the C heap's free pages; False if it cannot trim."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def freeze_survivors() -> None:
    """Leave every object alive now out of later garbage collections (``gc.freeze``).

    The run's process holds about 400,000 long-lived objects (Dagster's definitions, dbt's manifest,
    the imported libraries). Each full collection walked all of them: 0.4 to 0.7 s, three or four
    times in a cycle (in the dbt steps and the publication), 2 s of an incremental cycle at state
    scale (benchmarks/results/NOTES.md, stop 20). Frozen objects are still freed when their last
    reference goes; only a reference cycle among them is kept until the process ends.
    """
    gc.freeze()
