"""Building a period's site packages (and checking them) in parallel worker processes.

Packages are independent of each other, and building one is CPU work in
Python (charts, CUSUM, tables), so a publication of 700 sites uses every
core: the job (the period's prepared tables) is handed to forked workers,
which inherit it without copying, and each builds a share of the sites.
The privacy checks share the published files out the same way.
The files do not depend on the number of workers: each package is the
same, and the results come back in site order.

``CQI_PUBLISH_WORKERS`` sets the number of processes (1 builds in the
calling process); the default is the number of CPUs available, at most 4.
A worker that dies (killed, out of memory) fails the publication: nothing
is released (orchestration/publish/release.py).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from .inputs import close_readers
from .timing import Phases

MAX_WORKERS = 4
CHUNK = 10          # sites per task: small enough to balance, large enough to amortise

_TASK = None        # the task a forked worker inherits (never pickled)


def default_workers() -> int:
    explicit = os.environ.get("CQI_PUBLISH_WORKERS")
    if explicit:
        return max(1, int(explicit))
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, available))


def _run(argument):
    return _TASK(argument)


def forked_map(task, arguments: list, workers: int | None = None) -> list:
    """``[task(a) for a in arguments]``, in order, by forked workers that inherit ``task`` and its data."""
    global _TASK
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1 or len(arguments) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [task(a) for a in arguments]
    close_readers()      # no DuckDB connection crosses the fork
    _TASK = task
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(arguments)),
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run, arguments))
    finally:
        _TASK = None


def build_packages(job, workers: int | None = None) -> tuple[list, dict, Phases]:
    """Every site's package (``job.sites``): files written, CUSUM signal rows per site, the workers' phases."""
    chunks = [range(i, min(i + CHUNK, len(job.sites))) for i in range(0, len(job.sites), CHUNK)]
    parts = forked_map(lambda positions: job.build([job.sites[i] for i in positions]), chunks, workers)
    written, signalled, phases = [], {}, Phases()
    for files, signals, done in parts:
        written += files
        signalled.update(signals)
        phases.add(done)
    return written, signalled, phases
