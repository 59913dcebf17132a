"""Runs single pipeline stages in child processes and SIGKILLs them at a chosen point.

Started once per test session (``python stage_server.py``): it imports the
pipeline (Dagster definitions, dbt manifest) once, then reads one JSON
command per line on stdin and answers one JSON line on stdout. For each
command it forks a child in its own process group, which runs one stage
exactly as ``cqi`` runs it (``orchestration.cycle``) against the data folder
named in the command; the server reads the child's Dagster log as it is
written and, when asked, kills the whole process group (the child and any
``dbt`` it started) with SIGKILL a given delay after a log line appears.
Forking saves the few seconds of imports each stage would otherwise pay.

Stages:

- ``cycle``: ``run_cycle()``, the whole cycle as ``cqi run`` runs it;
- ``intake``: ``run_cycle()`` with the job limited to the registry and intake
  assets (receptions planned as ``cqi run`` plans them, unfinished ones too);
- ``publication``: ``run_publication()`` limited to the publication asset and
  its checks;
- ``privacy_checks``: the publication's three privacy checks alone, run by
  Dagster on the release the last publication recorded (prints
  ``CHECK_RESULTS {json}``);
- ``dbt``: ``run_publication()`` limited to the dbt assets and the risk
  models between them: ``dbt build`` of staging and intermediate models, the
  model fit, ``dbt build`` of the marts (dbt runs in the child's process
  group, so the kill reaches it too).

Command: ``{"stage": ..., "data_dir": ..., "trigger": "<text of a log line>" or
null for the start, "delay": seconds or null for no kill, "timeout": s}``.
Answer: ``{"killed": bool, "returncode": int | null, "steps": {step: [start,
end]}, "running": [steps started, not finished], "tail": [last log lines]}``
with times in seconds from the start of the child.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import sys
import tempfile
import time
import traceback

STEP_EVENT = re.compile(r" - (\S+) - (STEP_START|STEP_SUCCESS|STEP_FAILURE) - ")


def _limit_jobs(selection_for) -> None:
    """Make every job execution in this (child) process select only some assets."""
    from dagster import JobDefinition

    original = JobDefinition.execute_in_process

    def limited(self, *args, **kwargs):
        kwargs["asset_selection"] = selection_for(self.name)
        return original(self, *args, **kwargs)

    JobDefinition.execute_in_process = limited


def _child(stage: str, data_dir: str) -> int:
    os.environ["CQI_DATA_DIR"] = data_dir
    from orchestration import cycle
    from orchestration.defs.intake.assets import INTAKE_KEYS, REGISTRY_KEYS
    from orchestration.defs.jobs import CYCLE_JOB_NAME
    from orchestration.defs.publish.assets import publication

    if stage == "instance":   # only create the Dagster instance (a template for fresh data folders)
        import dagster as dg
        from orchestration.instance import prepare_dagster_home

        prepare_dagster_home()
        dg.DagsterInstance.get().dispose()
        return 0
    if stage == "cycle":
        return 0 if cycle.run_cycle().success else 1
    if stage == "intake":
        _limit_jobs(lambda job: [*REGISTRY_KEYS, *INTAKE_KEYS] if job == CYCLE_JOB_NAME else REGISTRY_KEYS)
        return 0 if cycle.run_cycle().success else 1
    if stage == "dbt":
        from orchestration.defs.models.assets import COEFFICIENTS, MODEL_VERSIONS
        from orchestration.defs.warehouse.dbt_assets import mart_models, warehouse_models

        keys = [*warehouse_models.keys, MODEL_VERSIONS, COEFFICIENTS, *mart_models.keys]
        _limit_jobs(lambda job: keys)
        return 0 if cycle.run_publication().success else 1
    if stage == "publication":
        _limit_jobs(lambda job: [publication.key])
        return 0 if cycle.run_publication().success else 1
    if stage == "privacy_checks":   # the publication's checks alone, on what it released last
        import dagster as dg
        from orchestration.definitions import defs
        from orchestration.defs.jobs import PUBLICATION_JOB_NAME
        from orchestration.instance import prepare_dagster_home

        names = ("packages_reveal_no_other_site", "no_direct_identifier_published", "no_small_count_published")
        job = defs.resolve_job_def(PUBLICATION_JOB_NAME).get_subset(
            asset_selection=set(), asset_check_selection={dg.AssetCheckKey(publication.key, n) for n in names})
        prepare_dagster_home()
        result = job.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False)
        evaluations = {e.event_specific_data.asset_check_key.name: {
            "passed": e.event_specific_data.passed, "severity": e.event_specific_data.severity.value,
            "description": e.event_specific_data.description}
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
        print("CHECK_RESULTS " + json.dumps(evaluations), flush=True)
        return 0 if result.success else 1
    raise ValueError(f"unknown stage {stage}")


def run(command: dict) -> dict:
    read_end, write_end = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:   # the child: its own process group, its output into the pipe
        code = 70
        try:
            os.setpgid(0, 0)
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            code = _child(command["stage"], command["data_dir"])
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass   # the child did it first
    trigger, delay = command.get("trigger"), command.get("delay")
    kill_at = started + delay if delay is not None and not trigger else None
    deadline = started + command.get("timeout", 600)
    steps: dict[str, list] = {}
    lines: list[str] = []
    buffer = b""
    killed = False
    while True:
        now = time.monotonic()
        if kill_at is not None and now >= kill_at and not killed:
            os.killpg(pid, signal.SIGKILL)
            killed = True
        if now >= deadline and not killed:
            os.killpg(pid, signal.SIGKILL)
            killed = True
            lines.append("(stage server: timed out)")
        wait = 0.5 if kill_at is None or killed else max(0.0, kill_at - now)
        ready, _, _ = select.select([read_end], [], [], min(wait, 0.5))
        if not ready:
            continue
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8", "replace")
            at = time.monotonic() - started
            lines.append(line)
            match = STEP_EVENT.search(line)
            if match:
                step, kind = match.groups()
                if kind == "STEP_START":
                    steps[step] = [at, None]
                elif step in steps:
                    steps[step][1] = at
            if trigger and trigger in line and kill_at is None and delay is not None:
                kill_at = time.monotonic() + delay
    os.close(read_end)
    _, status, usage = os.wait4(pid, 0)
    if not killed:
        try:
            os.killpg(pid, signal.SIGKILL)   # nothing of the stage may outlive it
        except ProcessLookupError:
            pass
    return {"killed": killed, "returncode": os.waitstatus_to_exitcode(status), "steps": steps,
            "running": [s for s, (a, b) in steps.items() if b is None], "tail": lines[-40:],
            "elapsed": time.monotonic() - started, "cpu": usage.ru_utime + usage.ru_stime}


def main() -> None:
    # Import once, before any fork; no DuckDB connection is opened here. The
    # throwaway instance imports the storage modules Dagster loads lazily.
    import dagster as dg

    import orchestration.cycle  # noqa: F401
    from orchestration.definitions import defs
    from orchestration.defs.jobs import CYCLE_JOB_NAME, PUBLICATION_JOB_NAME
    from orchestration.defs.warehouse.dbt_assets import dbt_project

    dbt_project()
    for name in (CYCLE_JOB_NAME, PUBLICATION_JOB_NAME):
        defs.resolve_job_def(name)
    with tempfile.TemporaryDirectory() as home:
        dg.DagsterInstance.local_temp(home).dispose()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
