"""Benchmark: what Dagster costs per reception in a cycle run, before and around the work (issue 9).

For each number of receptions N, in a fresh process with a fresh Dagster
instance configured by the project's ``dagster.yaml``: N reception partitions
are added and

- **to first step**: the cycle job is started over their range exactly as
  ``cqi run`` does (``orchestration/cycle.py``: range tags, the project's
  definitions) and stopped at its first ``STEP_START``; the time from the call
  is what a cycle spends before any work (run creation and planning);
- **intake bookkeeping**: a job with one step shaped like the intake asset
  (three assets on the ``submissions`` partitions, single-run backfill) whose
  body does nothing is run over the same range; its step window is what
  Dagster spends recording the materialisations of N receptions.

Nothing is read or received; no data folder is touched (a temporary one is used).

    .venv/bin/python benchmarks/bench_launch.py [--receptions 1 640 2000 5600] [--default-storage]

``--default-storage`` uses Dagster's default SQLite storage instead of the
project's (``orchestration/dagster_storage.py``), for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _FirstStep(BaseException):
    """Raised from the event log when the first step starts: the run need not go further."""


def _keys(n: int) -> list[str]:
    return [f"S{i % 700:03d}.20250101T{i:06d}000000.{i:012x}" for i in range(n)]


def _instance(home: Path, default_storage: bool):
    import yaml

    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    if default_storage:
        config.pop("storage", None)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def to_first_step(n: int, default_storage: bool) -> dict:
    """Seconds from starting the cycle job over ``n`` receptions to its first STEP_START."""
    from orchestration.definitions import defs
    from orchestration.defs.intake.partitions import range_tags, submissions_partitions
    from orchestration.defs.jobs import CYCLE_JOB_NAME

    instance = _instance(Path(os.environ["CQI_DATA_DIR"]) / "dagster_home", default_storage)
    keys = _keys(n)
    instance.add_dynamic_partitions(submissions_partitions.name, keys)
    job = defs.resolve_job_def(CYCLE_JOB_NAME)
    first: dict[str, float] = {}
    handle = type(instance).handle_new_event

    def watch(self, event, **kwargs):
        handle(self, event, **kwargs)
        if event.dagster_event is not None and event.dagster_event.event_type_value == "STEP_START":
            first.setdefault("at", time.time())
            raise _FirstStep()

    type(instance).handle_new_event = watch
    called = time.time()
    try:
        job.execute_in_process(instance=instance, raise_on_error=False,
                               tags={**range_tags(keys), "cqi/trigger": "cli"})
    except _FirstStep:
        pass
    finally:
        type(instance).handle_new_event = handle
    if "at" not in first:
        raise RuntimeError("the cycle job ended without starting a step")
    planned = sum(1 for _ in instance.all_logs(
        instance.get_runs(limit=1)[0].run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED))
    return {"to_first_step_s": round(first["at"] - called, 3), "planned_events": planned}


def intake_bookkeeping(n: int, default_storage: bool) -> dict:
    """The step window and the run of a do-nothing step shaped like the intake asset, over ``n`` receptions."""
    from orchestration.defs.intake.assets import INTAKE_KEYS
    from orchestration.defs.intake.partitions import range_tags, submissions_partitions

    @dg.multi_asset(specs=[dg.AssetSpec(key) for key in INTAKE_KEYS], partitions_def=submissions_partitions,
                    backfill_policy=dg.BackfillPolicy.single_run())
    def site_submissions(context):
        assert len(context.partition_keys) == n
        for key in INTAKE_KEYS:
            yield dg.MaterializeResult(asset_key=key)

    job = dg.Definitions(assets=[site_submissions], jobs=[dg.define_asset_job("bench_intake")],
                         executor=dg.in_process_executor).resolve_job_def("bench_intake")
    instance = _instance(Path(os.environ["CQI_DATA_DIR"]) / "dagster_home_intake", default_storage)
    keys = _keys(n)
    instance.add_dynamic_partitions(submissions_partitions.name, keys)
    called = time.time()
    result = job.execute_in_process(instance=instance, tags=range_tags(keys))
    returned = time.time()
    window = {}
    for entry in instance.all_logs(result.run_id):
        kind = entry.dagster_event.event_type_value if entry.dagster_event else None
        if kind in ("STEP_START", "STEP_SUCCESS"):
            window[kind] = entry.timestamp
    materialised = len(result.asset_materializations_for_node("site_submissions"))
    return {"intake_step_s": round(window["STEP_SUCCESS"] - window["STEP_START"], 3),
            "intake_run_s": round(returned - called, 3), "materialisations": materialised}


def measure(n: int, default_storage: bool) -> dict:
    """Both measurements for ``n`` receptions, in a child process with its own temporary data folder."""
    with tempfile.TemporaryDirectory(prefix="cqi-bench-launch-") as folder:
        env = {**os.environ, "CQI_DATA_DIR": folder}
        env.pop("DAGSTER_HOME", None)
        command = [sys.executable, __file__, "--one", str(n)] + (["--default-storage"] if default_storage else [])
        done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"N={n} failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receptions", type=int, nargs="+", default=[1, 640, 2000, 5600])
    parser.add_argument("--default-storage", action="store_true",
                        help="Dagster's default SQLite storage instead of the project's")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        import logging

        logging.disable(logging.CRITICAL)
        print(json.dumps({"receptions": args.one, **to_first_step(args.one, args.default_storage),
                          **intake_bookkeeping(args.one, args.default_storage)}))
        return
    storage = "Dagster default storage" if args.default_storage else "project storage (dagster.yaml)"
    print(f"{storage}")
    print(f"{'receptions':>10} {'to first step s':>16} {'planned events':>15} {'intake step s':>14} "
          f"{'intake run s':>13} {'materialisations':>17}")
    for n in args.receptions:
        r = measure(n, args.default_storage)
        print(f"{n:>10,} {r['to_first_step_s']:>16.2f} {r['planned_events']:>15,} {r['intake_step_s']:>14.2f} "
              f"{r['intake_run_s']:>13.2f} {r['materialisations']:>17,}", flush=True)


if __name__ == "__main__":
    main()
