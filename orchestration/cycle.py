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
from pathlib import Path

from .instance import prepare_dagster_home
from .memory import freeze_survivors
from .settings import paths


class RunInProgress(RuntimeError):
    """Another pipeline run holds the warehouse; this one is refused, not queued."""


@contextmanager
def exclusive_run(instance=None):
    """Hold the deployment's run lock for the duration of a run started from ``cqi``; yield the instance.

    Two ``cqi`` runs at once are refused with a clear message (DuckDB has one
    writer). Without ``instance``, the project's Dagster instance is opened
    only once the lock is held: two runs started together on a new deployment
    would otherwise both create its storage, and the second would fail with
    a database error instead of being refused. Holding the lock also proves
    that no other ``cqi`` run is alive, so a run recorded as started, a killed
    one, is marked failed and its ``duckdb_writer`` pool slot is freed:
    otherwise the next run would wait for that slot for ever.
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
        if instance is None:
            prepare_dagster_home()
            instance = dg.DagsterInstance.get()
        orphans = instance.get_run_records(dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]))
        for record in orphans:
            instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
            instance.report_run_failed(record.dagster_run, "the process running it ended without finishing")
        yield instance
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


def unfinished_receptions(known: list[str]) -> list[str]:
    """Receptions planned for an earlier run that ended (was killed) before receiving them.

    Every reception ever planned has a manifest under ``receptions/``. One is
    finished once its file has left the landing folder and its submission is
    in the ledger (``intake.submissions``, committed with its rows), or once it
    could not be received at all (its file left landing without being
    archived, or became a link). A run killed midway leaves the others: files
    still in landing, and files archived and removed from landing whose rows
    were never committed. Their partitions already exist (``known``), so
    without this they would never be received. Returned in partition order,
    then those planned but never added as partitions.
    """
    import duckdb

    from .intake.archive import find_archived, sha256_of
    from .intake.receive import submission_id_for
    from .intake.receptions import read_manifest

    folders = paths()
    if not folders.receptions.is_dir():
        return []
    ledger: set[str] = set()
    if folders.warehouse.exists():
        with duckdb.connect(str(folders.warehouse), read_only=True) as con:
            if con.execute("select count(*) from information_schema.tables "
                           "where table_schema = 'intake' and table_name = 'submissions'").fetchone()[0]:
                ledger = {r[0] for r in con.execute("select submission_id from intake.submissions").fetchall()}
    order = {key: i for i, key in enumerate(known)}
    planned = sorted((p.stem for p in folders.receptions.glob("*.json")), key=lambda k: (order.get(k, len(order)), k))
    unfinished = []
    for key in planned:
        reception = read_manifest(folders.receptions, key)
        landed = Path(reception.landing_path)
        if landed.is_file() and not landed.is_symlink() and sha256_of(landed) == reception.checksum:
            if key in order:
                unfinished.append(key)      # handed to a run, never archived or not yet removed from landing
        elif (submission_id_for(reception.site_id, reception.checksum) not in ledger
              and find_archived(folders.archive, reception) is not None):
            unfinished.append(key)          # archived and removed from landing, rows never committed
    return unfinished


def run_cycle(instance=None) -> CycleOutcome:
    """Receive what waits in landing and run the cycle (or only publication) once."""
    from .definitions import defs
    from .defs.intake.partitions import range_tags, submissions_partitions
    from .defs.intake.sensors import evaluate_landing
    from .defs.jobs import CYCLE_JOB_NAME, PUBLICATION_JOB_NAME

    with exclusive_run(instance) as instance:
        known = instance.get_dynamic_partitions(submissions_partitions.name)
        # Receptions a killed run left unfinished join this run: their partitions
        # are moved to the end, so that with the fresh ones they form one range
        # (a kill between removing and adding them is recovered the same way).
        retried = unfinished_receptions(known)
        fresh, _ = evaluate_landing(json.dumps(sorted(set(known) | set(retried))))
        for key in set(retried) & set(known):
            instance.delete_dynamic_partition(submissions_partitions.name, key)
        keys = retried + fresh
        if keys:
            instance.add_dynamic_partitions(submissions_partitions.name, keys)
            job = defs.resolve_job_def(CYCLE_JOB_NAME)
            freeze_survivors()      # the definitions and imports live as long as the process
            result = job.execute_in_process(instance=instance, raise_on_error=False,
                                            tags={**range_tags(keys), "cqi/trigger": "cli"})
        else:
            job = defs.resolve_job_def(PUBLICATION_JOB_NAME)
            freeze_survivors()
            result = job.execute_in_process(instance=instance, raise_on_error=False, tags={"cqi/trigger": "cli"})
        return _outcome(result, keys)


def run_publication(period: str | None = None, instance=None) -> CycleOutcome:
    """Run the publication job (quality, marts, packages) for ``period`` (default: the latest)."""
    from .definitions import defs
    from .defs.jobs import PUBLICATION_JOB_NAME

    run_config = {"ops": {"publication": {"config": {"period": period}}}} if period else None
    freeze_survivors()
    with exclusive_run(instance) as instance:
        result = defs.resolve_job_def(PUBLICATION_JOB_NAME).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, tags={"cqi/trigger": "cli"})
        return _outcome(result, [])
