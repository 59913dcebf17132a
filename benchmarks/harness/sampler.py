"""Resident memory of a process tree, sampled from outside the process.

Why from outside: the measured cycle runs in a child process, and dbt runs in
subprocesses of that child. A sampling thread inside the cycle would share
its GIL and miss the dbt processes; polling ``/proc`` from the parent sees
every descendant and needs no third-party package (psutil is not installed).
Each process counts its proportional set size (PSS: a page shared by k
processes counts 1/k in each), so the sum is the memory the tree really
holds. Summing RSS instead counts pages shared with forked workers (the
publication forks them from a process holding the release's tables) once per
worker: at L that tripled a 10 GiB process. Falls back to RSS where
``smaps_rollup`` is missing.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def tree_pids(root: int) -> list[int]:
    """``root`` and every descendant still alive."""
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack += _children(pid)
    return pids


def rss_kib(pid: int) -> int:
    """The process's PSS in KiB (RSS where the kernel gives no ``smaps_rollup``; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
        return int(fields[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0


class TreeSampler:
    """Samples (wall-clock time, tree PSS in KiB, root's PSS in KiB) every ``interval`` seconds until stopped.

    The root's share tells a peak held by the cycle's own process (which runs
    every Python step) from one held by its dbt subprocess.
    """

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = {p: rss_kib(p) for p in tree_pids(self.pid)}
            self.samples.append((time.time(), sum(sizes.values()), sizes.get(self.pid, 0)))
            self._stop.wait(self.interval)

    def start(self) -> "TreeSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _peak_sample(self, start: float | None, end: float | None) -> tuple[float, int, int]:
        start = float("-inf") if start is None else start
        end = float("inf") if end is None else end
        inside = [s for s in self.samples if start <= s[0] <= end]
        if not inside:   # a window shorter than one interval: the nearest sample
            mid = (start + end) / 2
            inside = [min(self.samples, key=lambda s: abs(s[0] - mid))] if self.samples else [(mid, 0, 0)]
        return max(inside, key=lambda s: s[1])

    def peak_mib(self, start: float | None = None, end: float | None = None) -> float:
        """The highest sampled tree PSS between ``start`` and ``end`` (wall-clock seconds), in MiB."""
        return round(self._peak_sample(start, end)[1] / 1024, 1)

    def root_at_peak_mib(self, start: float | None = None, end: float | None = None) -> float:
        """The root process's own PSS at the moment of that peak, in MiB (the rest is its subprocesses)."""
        return round(self._peak_sample(start, end)[2] / 1024, 1)
