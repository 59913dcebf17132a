"""SIGKILL at random points of intake, the dbt build and publication; then recover.

Each trial kills the process running a stage (and everything it started)
after a random delay drawn within the measured duration of that stage, then
checks what must hold after any crash (``harness.consistency_problems``): the
warehouse opens, no half-loaded submission is visible, ``publish/latest`` and
every ``publish/<period>`` are complete releases, earlier releases are
untouched and no file a site sent is lost. A re-run must then converge to the
uninterrupted reference run: same intake tables and receipts, same marts,
same published files (manifests differing only in run id and time).

The delays come from one seeded generator: the seed is in every failure
message, and ``CQI_CRASH_SEED=<seed>`` replays a campaign. The default is 20
trials (9 in intake, 3 in the dbt build, 8 in publication);
``CQI_CRASH_TRIALS=200`` runs a long campaign in the same proportions.
"""

from __future__ import annotations

import os
import random

import pytest

from reliability.harness import (RUN_FIELDS, consistency_problems, differing_intake, differing_tables,
                                 intake_state, landed_files, manifest_differences, marts, release_checksums,
                                 release_state)

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CQI_CRASH_SEED", "20261123"))
TOTAL = max(int(os.environ.get("CQI_CRASH_TRIALS", "20")), 3)
TRIALS = {"intake": round(TOTAL * 0.45), "dbt": round(TOTAL * 0.15)}
TRIALS["publication"] = TOTAL - TRIALS["intake"] - TRIALS["dbt"]


def replay(stage: str, trial: int, delay: float) -> str:
    return (f"{stage} trial {trial}, killed {delay:.3f}s into the stage; seed {SEED} "
            f"(replay with CQI_CRASH_SEED={SEED} CQI_CRASH_TRIALS={TOTAL})")


def same_release(reference, data_dir) -> list[str]:
    """Differences between the latest release and the reference's, beyond run id and time."""
    got = release_state((data_dir / "publish" / "latest").resolve())
    problems = [f"{name} differs" for name in set(reference.release["files"]) | set(got["files"])
                if reference.release["files"].get(name) != got["files"].get(name)]
    problems += differing_tables(reference.release["inputs"], got["inputs"])
    extra = manifest_differences(reference.release["manifest"], got["manifest"]) - RUN_FIELDS
    return problems + [f"manifest field {key} differs" for key in sorted(extra)]


def test_a_kill_during_intake_loses_nothing_and_a_rerun_receives_every_file(reference, stage_server, tmp_path):
    """`cqi run` killed while receiving; the next run receives what the killed one had not committed.

    Trials come in pairs on one data folder: the first kill falls inside the
    intake step of a new deployment; the second inside the run that retries it,
    anywhere from its start (planning which receptions to retry) to the end of
    its intake. Then a re-run must converge.
    """
    rng = random.Random(SEED)
    trials = TRIALS["intake"]
    for trial in range(trials):
        first = trial % 2 == 0
        if first:
            data = reference.fresh(tmp_path / f"trial{trial}")
            landed = landed_files(data)
            delay = rng.uniform(0, reference.intake_seconds)
            stage_server.run("cycle", data, trigger=" - site_submissions - STEP_START", delay=delay)
        else:
            delay = rng.uniform(0, reference.intake_end)
            stage_server.run("cycle", data, delay=delay)
        where = replay("intake", trial, delay)
        assert consistency_problems(data, {}, landed) == [], where
        if first and trial < trials - 1:
            continue
        # Recovery runs intake alone (receptions planned as `cqi run` plans them); in the long
        # campaign the last trial recovers with the whole cycle and compares marts and packages.
        whole = TOTAL > 20 and trial == trials - 1
        recovered = stage_server.run("cycle" if whole else "intake", data)
        assert recovered["returncode"] == 0, f"{where}: the re-run failed\n" + "\n".join(recovered["tail"])
        assert consistency_problems(data, {}, landed) == [], where
        assert differing_intake(reference.intake, intake_state(data)) == [], where
        if whole:
            assert differing_tables(reference.marts, marts(data / "warehouse.duckdb")) == [], where
            assert same_release(reference, data) == [], where


def test_a_kill_during_the_dbt_build_leaves_a_warehouse_that_rebuilds_to_the_same_marts(
        reference, stage_server, tmp_path):
    """The dbt build (staging, risk models, marts) killed again and again in place; a complete one converges."""
    rng = random.Random(SEED + 1)
    data = reference.copy(tmp_path / "data")
    released = release_checksums(data / "publish")
    for trial in range(TRIALS["dbt"]):
        delay = rng.uniform(0, reference.dbt_seconds)
        where = replay("dbt", trial, delay)
        stage_server.run("dbt", data, trigger=" - warehouse_models - STEP_START", delay=delay)
        assert consistency_problems(data, released) == [], where
    rebuilt = stage_server.run("dbt", data)
    assert rebuilt["returncode"] == 0, f"seed {SEED}: the re-run failed\n" + "\n".join(rebuilt["tail"])
    assert differing_tables(reference.marts, marts(data / "warehouse.duckdb")) == [], f"seed {SEED}"
    assert consistency_problems(data, released) == [], f"seed {SEED}"
    if TOTAL > 20:   # the long campaign also publishes from the rebuilt marts
        published = stage_server.run("publication", data)
        assert published["returncode"] == 0, "\n".join(published["tail"])
        assert same_release(reference, data) == [], f"seed {SEED}"


def test_a_kill_during_publication_leaves_every_release_complete_and_a_rerun_publishes_the_same(
        reference, stage_server, tmp_path):
    """Publication killed midway (in pairs: the re-run of a killed one is killed too); `latest` is always
    a complete release, earlier releases are untouched and a re-run publishes the same files."""
    rng = random.Random(SEED + 2)
    data = reference.copy(tmp_path / "data")
    trials = TRIALS["publication"]
    for trial in range(trials):
        released = release_checksums(data / "publish")
        delay = rng.uniform(0, reference.publication_seconds)
        where = replay("publication", trial, delay)
        stage_server.run("publication", data, trigger=" - publication - STEP_START", delay=delay)
        assert consistency_problems(data, released) == [], where
        if trial % 2 == 0 and trial < trials - 1:
            continue
        recovered = stage_server.run("publication", data)
        assert recovered["returncode"] == 0, f"{where}: the re-run failed\n" + "\n".join(recovered["tail"])
        assert consistency_problems(data, released) == [], where
        assert same_release(reference, data) == [], where
