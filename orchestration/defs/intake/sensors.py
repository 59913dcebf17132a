"""The landing sensor: new files in a site folder start a cycle run.

The cursor holds the fingerprints (site, name, size, modification time) of
the files already handed to a run; the run key is derived from the new
fingerprints, so a restarted daemon re-evaluating the same files asks for the
same run and Dagster does not launch it twice. Files that arrive while a run
is going are new fingerprints at the next tick.
"""


import hashlib
import json

import dagster as dg

from ...intake import landed_files
from ...registry import load_registry
from ...settings import paths, registry_dir
from ..jobs import cycle_job


def new_fingerprints(seen: set[str]) -> list[str]:
    registry = load_registry(registry_dir())
    current = [f.fingerprint for f in landed_files(paths().landing, registry.site_ids())]
    return [fp for fp in current if fp not in seen]


@dg.sensor(job=cycle_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_sensor(context: dg.SensorEvaluationContext):
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    fresh = new_fingerprints(seen)
    if not fresh:
        return dg.SkipReason("no new files in the landing zone")
    run_key = hashlib.sha256("\n".join(sorted(fresh)).encode()).hexdigest()[:20]
    # Keep only fingerprints of files still waiting: received files leave landing.
    still_waiting = set(new_fingerprints(set())) | set(fresh)
    context.update_cursor(json.dumps(sorted(still_waiting)))
    return dg.RunRequest(run_key=run_key, tags={"cqi/trigger": "landing_sensor", "cqi/files": str(len(fresh))})
