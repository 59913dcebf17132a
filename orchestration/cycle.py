"""Running the pipeline through the project's Dagster instance, as the daemon would.

``cqi run`` and ``cqi demo`` plan receptions exactly like the landing sensor,
add them as partitions and execute the cycle job over their range with the
project-local instance, so runs, materialisations and check results are
recorded and visible in the Dagster UI. With nothing new to receive they run
the publication job (quality, marts, feedback) instead.
"""

from __future__ import annotations

import json
import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

from .instance import prepare_dagster_home
from .settings import paths


class RunInProgress(RuntimeError):
    """Another pipeline run holds the warehouse; this one is refused, not queued."""


@contextmanager
def exclusive_run(instance):
    """Hold the deployment's run lock for the duration of a run started from ``cqi``.

    Two ``cqi`` runs at once are refused with a clear message (DuckDB has one
    writer). Holding the lock also proves that no other ``cqi`` run is alive,
    so a run recorded as started, a killed one, is marked failed and its
    ``duckdb_writer`` pool slot is freed: otherwise the next run would wait
    for that slot for ever.
    """
    import dagster as dg

    lock_path = paths().data_dir / ".run.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RunInProgress(f"another pipeline run is in progress ({handle.read().strip() or 'pid unknown'}); "
                                "wait for it to finish, then try again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        orphans = instance.get_run_records(dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]))
        for record in orphans:
            instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
            instance.report_run_failed(record.dagster_run, "the process running it ended without finishing")
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@dataclass(frozen=True)
class CycleOutcome:
    run_id: str
    success: bool
    failed_steps: list[str]
    failed_checks: list[str]
    receptions: list[str] = field(default_factory=list)


def _outcome(result, keys) -> CycleOutcome:
    failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
    failed_checks = [e.event_specific_data.asset_check_key.name for e in result.all_events
                     if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed]
    return CycleOutcome(result.run_id, result.success and not failed_steps, failed_steps, failed_checks, keys)


def run_cycle(instance=None) -> CycleOutcome:
    """Receive what waits in landing and run the cycle (or only publication) once."""
    import dagster as dg

    from .definitions import defs
    from .defs.intake.partitions import range_tags, submissions_partitions
    from .defs.intake.sensors import evaluate_landing
    from .defs.jobs import CYCLE_JOB_NAME, PUBLICATION_JOB_NAME

    if instance is None:
        prepare_dagster_home()
        instance = dg.DagsterInstance.get()
    with exclusive_run(instance):
        known = set(instance.get_dynamic_partitions(submissions_partitions.name))
        keys, _ = evaluate_landing(json.dumps(sorted(known)))
        if keys:
            instance.add_dynamic_partitions(submissions_partitions.name, keys)
            job = defs.resolve_job_def(CYCLE_JOB_NAME)
            result = job.execute_in_process(instance=instance, raise_on_error=False,
                                            tags={**range_tags(keys), "cqi/trigger": "cli"})
        else:
            job = defs.resolve_job_def(PUBLICATION_JOB_NAME)
            result = job.execute_in_process(instance=instance, raise_on_error=False, tags={"cqi/trigger": "cli"})
        return _outcome(result, keys)


def run_publication(period: str | None = None, instance=None) -> CycleOutcome:
    """Run the publication job (quality, marts, packages) for ``period`` (default: the latest)."""
    import dagster as dg

    from .definitions import defs
    from .defs.jobs import PUBLICATION_JOB_NAME

    if instance is None:
        prepare_dagster_home()
        instance = dg.DagsterInstance.get()
    run_config = {"ops": {"publication": {"config": {"period": period}}}} if period else None
    with exclusive_run(instance):
        result = defs.resolve_job_def(PUBLICATION_JOB_NAME).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, tags={"cqi/trigger": "cli"})
        return _outcome(result, [])
