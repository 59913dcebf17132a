"""Running the pipeline's cycle job through the Dagster instance.

Used by ``cqi demo`` and ``cqi run``: the job runs with the project-local
instance, so every run, materialisation and check result is recorded and
visible in the Dagster UI, exactly as a run launched there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .instance import prepare_dagster_home


@dataclass(frozen=True)
class CycleOutcome:
    run_id: str
    success: bool
    failed_steps: list[str]
    failed_checks: list[str]


def run_cycle() -> CycleOutcome:
    prepare_dagster_home()
    import dagster as dg

    from .definitions import defs
    from .defs.jobs import CYCLE_JOB_NAME

    job = defs.resolve_job_def(CYCLE_JOB_NAME)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
        failed_checks = [
            f"{e.event_specific_data.asset_check_key.name}"
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and not e.event_specific_data.passed
        ]
        return CycleOutcome(result.run_id, result.success and not failed_steps, failed_steps, failed_checks)
