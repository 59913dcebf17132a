"""The landing sensor: new files in site folders start a cycle run.

Each tick turns the files not yet handed to a run into receptions
(partitions), adds them and requests one run over their range. The cursor
holds the keys already handed over whose files are still in landing (a run
removes a file once it is archived); keys are derived from the landing state, and the run key from the
keys, so a tick retried after a daemon restart asks for the same run and
Dagster does not launch it twice. Files that arrive while a run is going are
new keys at the next tick.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg

from ...intake.receptions import plan_receptions, read_manifest
from ...registry import load_registry
from ...settings import paths, registry_dir
from ..jobs import cycle_job
from .partitions import range_tags, submissions_partitions


def evaluate_landing(cursor: str | None) -> tuple[list[str], str]:
    """The new reception keys and the next cursor."""
    folders = paths().ensure()
    registry = load_registry(registry_dir())
    handed_over = set(json.loads(cursor)) if cursor else set()
    fresh = plan_receptions(folders.landing, registry.site_ids(), folders.receptions, handed_over)
    still_waiting = {key for key in handed_over
                     if (folders.receptions / f"{key}.json").is_file()
                     and Path(read_manifest(folders.receptions, key).landing_path).exists()}
    return [r.key for r in fresh], json.dumps(sorted(still_waiting | {r.key for r in fresh}))


@dg.sensor(job=cycle_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_sensor(context: dg.SensorEvaluationContext):
    keys, cursor = evaluate_landing(context.cursor)
    if not keys:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new files in the landing zone"), cursor=cursor)
    run_key = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, tags={**range_tags(keys), "cqi/receptions": str(len(keys))})],
        dynamic_partitions_requests=[submissions_partitions.build_add_request(keys)],
        cursor=cursor,
    )
