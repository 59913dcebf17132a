"""The measured child process: one cycle, the floor, or a no-op Dagster run.

Why a child process: the parent samples the child's whole process tree for
memory (dbt runs in subprocesses of it), and each measured run starts from a
fresh interpreter, as ``cqi run`` would, so nothing one run cached or
allocated flatters the next. The child writes its measurements as JSON.

    python -m benchmarks.harness.worker cycle --out F.json
    python -m benchmarks.harness.worker floor --out F.json --files FILES.json --coefficients C.parquet
    python -m benchmarks.harness.worker noop --out F.json
"""

from __future__ import annotations

import time

STARTED = time.time()   # before the heavy imports: the imports are part of what is measured

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402


def _peak_self_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _steps(instance, run_id: str) -> tuple[dict, dict, list]:
    """Step windows (wall-clock start/end) and run start/end from the run's event log."""
    steps: dict[str, dict] = {}
    run: dict[str, float] = {}
    materialisations = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            steps.setdefault(entry.step_key, {})["start"] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            steps.setdefault(entry.step_key, {})["end"] = entry.timestamp
            steps[entry.step_key]["status"] = kind.removeprefix("STEP_").lower()
        elif kind == "STEP_SKIPPED":
            steps.setdefault(entry.step_key, {})["status"] = "skipped"
        elif kind in ("RUN_START", "PIPELINE_START"):
            run["start"] = entry.timestamp
        elif kind in ("RUN_SUCCESS", "RUN_FAILURE", "PIPELINE_SUCCESS", "PIPELINE_FAILURE"):
            run["end"] = entry.timestamp
        elif kind == "ASSET_MATERIALIZATION":
            m = event.event_specific_data.materialization
            meta = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            materialisations.append({"asset": "/".join(m.asset_key.path), "step": entry.step_key,
                                     "metadata": {k: v for k, v in meta.items()
                                                  if isinstance(v, (int, float, str, bool, dict))}})
    return steps, run, materialisations


def cycle(out: Path) -> None:
    import dagster as dg

    from orchestration.cycle import run_cycle
    from orchestration.instance import prepare_dagster_home
    from orchestration import definitions  # noqa: F401  (built at import, as cqi does)

    from .profiler import StackSampler, dbt_profile
    from .work import snapshot, work_done

    imported = time.time()
    prepare_dagster_home()
    instance = dg.DagsterInstance.get()
    before = snapshot()
    called = time.time()
    with StackSampler() as stacks:
        outcome = run_cycle(instance)
    returned = time.time()
    steps, run, materialisations = _steps(instance, outcome.run_id)
    result = {
        "process_started": STARTED, "imported": imported, "run_called": called, "run_returned": returned,
        "run_id": outcome.run_id, "success": outcome.success, "failed_steps": outcome.failed_steps,
        "failed_checks": outcome.failed_checks, "receptions": len(outcome.receptions),
        "steps": steps, "run": run, "materialisations": materialisations, "peak_self_mib": _peak_self_mib(),
        "profile": {"python_by_step": stacks.by_step(steps), "dbt_thread_by_step": stacks.dbt_by_step(steps),
                    "dbt": dbt_profile(outcome.run_id)},
    }
    result["work"] = work_done(before, result)
    out.write_text(json.dumps(result, indent=2, default=str))


def floor(out: Path, files: Path, coefficients: Path) -> None:
    import pandas as pd

    from orchestration.registry import load_registry
    from orchestration.settings import registry_dir

    from .floor import run_floor

    imported = time.time()
    registry = load_registry(registry_dir())
    measured = run_floor(registry, json.loads(files.read_text()), pd.read_parquet(coefficients))
    finished = time.time()
    measured.pop("results").to_parquet(out.with_suffix(".parquet"))
    out.write_text(json.dumps({"process_started": STARTED, "imported": imported, "finished": finished,
                               "peak_self_mib": _peak_self_mib(), **measured}, indent=2))


def noop(out: Path) -> None:
    """A one-step job on the project's instance: what launching any run costs."""
    import dagster as dg

    from orchestration.instance import prepare_dagster_home

    @dg.asset
    def nothing() -> None:
        return None

    job = dg.Definitions(assets=[nothing], jobs=[dg.define_asset_job("benchmark_noop")],
                         executor=dg.in_process_executor).resolve_job_def("benchmark_noop")
    prepare_dagster_home()
    instance = dg.DagsterInstance.get()
    imported = time.time()
    result = job.execute_in_process(instance=instance)
    finished = time.time()
    steps, run, _ = _steps(instance, result.run_id)
    out.write_text(json.dumps({"process_started": STARTED, "imported": imported, "finished": finished,
                               "success": result.success, "steps": steps, "run": run}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["cycle", "floor", "noop"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--files", type=Path)
    parser.add_argument("--coefficients", type=Path)
    args = parser.parse_args()
    if args.mode == "cycle":
        cycle(args.out)
    elif args.mode == "floor":
        floor(args.out, args.files, args.coefficients)
    else:
        noop(args.out)


if __name__ == "__main__":
    main()
