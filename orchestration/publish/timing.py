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

    @contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def add(self, seconds: dict[str, float]) -> None:
        for name, value in seconds.items():
            self.seconds[name] += value

    def rounded(self, digits: int = 2) -> dict[str, float]:
        return {name: round(value, digits) for name, value in self.seconds.items()}
