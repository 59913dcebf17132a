"""Seconds spent per phase of a publication.

A publication of 700 sites has a time budget (issue 7: 120 s), so the asset
records where its time goes (tables, workbooks, reports, checks, manifest)
in its metadata, and the benchmark prints the same breakdown. Phases run in
worker processes are added up as the workers report them, so the phases can
sum to more than the wall time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)     # what was done, e.g. sites whose cases were read

    @contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def add(self, other: "Phases") -> None:
        for name, value in other.seconds.items():
            self.seconds[name] += value
        for name, value in other.counts.items():
            self.counts[name] += value

    def rounded(self, digits: int = 2) -> dict[str, float]:
        return {name: round(value, digits) for name, value in self.seconds.items()}
