"""Progress bars for long commands, drawn only on a terminal.

A person waiting a minute for ``cqi demo`` wants to see that it moves; a
script, a scheduler or a test reading cqi's output wants plain lines, not a
bar redrawn with carriage returns and cursor codes. So bars go to stderr and
only when stderr is a terminal (``CQI_PROGRESS=0`` turns them off there too).

Rich allows one live display at a time, so nested bars (the demo's stages,
then a pipeline run's steps) are tasks of one shared display.

Pipeline runs are executed in-process by ``orchestration.cycle``; their steps
are followed by reading the run's events from the Dagster instance in a
background thread, so the pipeline code knows nothing about bars.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator, Optional

_live = None            # the one rich Progress on screen, if any
_lock = threading.Lock()


def enabled() -> bool:
    """Bars only for a person at a terminal."""
    if os.environ.get("CQI_PROGRESS", "").strip().lower() in ("0", "no", "false", "off"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Task:
    """One bar; every method is a no-op when bars are off, so callers never check."""

    def __init__(self, progress=None, task_id=None):
        self._progress, self._id = progress, task_id

    def update(self, description: Optional[str] = None, total: Optional[float] = None,
               completed: Optional[float] = None) -> None:
        if self._progress is None:
            return
        fields = {k: v for k, v in (("description", description), ("total", total), ("completed", completed))
                  if v is not None}
        with _lock:
            self._progress.update(self._id, **fields)

    def advance(self, description: Optional[str] = None, steps: float = 1) -> None:
        if self._progress is None:
            return
        with _lock:
            if description is not None:
                self._progress.update(self._id, description=description)
            self._progress.advance(self._id, steps)


def _new_progress():
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn)

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True))


@contextmanager
def task(description: str, total: Optional[float] = None, keep: bool = True) -> Iterator[Task]:
    """A bar for the duration of the block; ``total=None`` pulses until the work ends.

    ``keep=False`` removes the bar when the block ends (a sub-step's bar).
    """
    global _live
    if not enabled():
        yield Task()
        return
    owner = _live is None
    if owner:
        _live = _new_progress()
        _live.start()
    progress = _live
    with _lock:
        task_id = progress.add_task(description, total=total)
    try:
        yield Task(progress, task_id)
        with _lock:
            if next(t for t in progress.tasks if t.id == task_id).total is None:
                progress.update(task_id, total=1, completed=1)   # a pulsing bar ends full
    finally:
        with _lock:
            if not keep:
                progress.remove_task(task_id)
        if owner:
            progress.stop()
            _live = None


STEP_DONE = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")
STORAGE_FILES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


def _follow_run(bar: Task, label: str, since: datetime, stop: threading.Event) -> None:
    """Advance ``bar`` as the newest run started by cqi after ``since`` finishes its steps."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    instance = dg.DagsterInstance.get()
    run = None
    cursor = None
    done = 0
    kinds = {DagsterEventType(kind) for kind in STEP_DONE}
    while not stop.wait(0.5):
        if run is None:
            records = instance.get_run_records(dg.RunsFilter(tags={"cqi/trigger": "cli"}, created_after=since),
                                               limit=1)
            if not records:
                continue
            run = records[0].dagster_run
            plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
            bar.update(description=f"{label}: {run.job_name}", total=len(plan.steps), completed=0)
        page = instance.get_records_for_run(run.run_id, cursor=cursor, of_type=kinds)
        cursor = page.cursor
        for record in page.records:
            done += 1
            bar.update(description=f"{label}: {record.event_log_entry.dagster_event.step_key}", completed=done)


@contextmanager
def pipeline_run(label: str = "pipeline run") -> Iterator[None]:
    """A bar over the steps of the Dagster run that the block starts (``run_cycle``, ``run_publication``)."""
    if not enabled():
        yield
        return
    from pathlib import Path

    from ..instance import prepare_dagster_home

    home = Path(prepare_dagster_home())   # the watcher opens the same instance as the run
    since = datetime.now(timezone.utc)
    stop = threading.Event()
    with task(label, keep=False) as bar:
        if not all((home / db).is_file() for db in STORAGE_FILES):
            # A new deployment: the run creates the instance's storage under the run lock
            # (orchestration/cycle.py); opening it here at the same time could race that, so
            # this first run's bar only pulses.
            yield
            return

        def watch() -> None:
            try:
                _follow_run(bar, label, since, stop)
            except Exception:   # noqa: BLE001 - a bar must never break a run; it just stops moving
                pass

        watcher = threading.Thread(target=watch, name="cqi-progress", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=5)
