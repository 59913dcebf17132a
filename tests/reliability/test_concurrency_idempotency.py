"""Two runs at once, and the whole cycle twice on the same inputs.

Two ``cqi run`` processes are started together on a new deployment (no
warehouse, no Dagster instance yet): one runs the cycle, the other is refused
at once with exit code 4 and a message, and starts no Dagster run. The
winner's result is then a second, independent run of the whole cycle on the
inputs of the reference run, so the same fixture shows idempotency: the same
intake tables, the same marts and the same published files, the manifests
differing only in the run id and the publication time.

Files that arrive while a run is going are taken by the next sensor tick, not
by the run: ``tests/integration/test_sensor.py::
test_files_dropped_during_a_run_are_taken_at_the_next_tick_exactly_once``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reliability.harness import (RUN_FIELDS, canonical, differing_intake, differing_tables, environment,
                                 intake_state, manifest_differences, marts, release_state)

pytestmark = pytest.mark.slow
REFUSED = 4   # README: "4 another run is in progress"


@pytest.fixture(scope="module")
def two_at_once(reference, tmp_path_factory):
    root = tmp_path_factory.mktemp("two_at_once")
    data = root / "data"
    shutil.copytree(reference.inputs / "landing", data / "landing")
    cqi = str(Path(sys.executable).parent / "cqi")
    logs = [(open(root / f"out{i}", "w+"), open(root / f"err{i}", "w+")) for i in range(2)]
    processes = [subprocess.Popen([cqi, "run"], env=environment(data), stdout=out, stderr=err)
                 for out, err in logs]
    codes = [p.wait(timeout=900) for p in processes]
    texts = []
    for out, err in logs:
        out.seek(0)
        err.seek(0)
        texts.append(out.read() + err.read())
        out.close()
        err.close()
    return data, codes, texts


def test_two_runs_started_at_once_one_runs_and_the_other_is_refused_with_exit_4(two_at_once, monkeypatch):
    data, codes, texts = two_at_once
    assert sorted(codes) == [0, REFUSED], texts
    refused = texts[codes.index(REFUSED)]
    assert "another pipeline run is in progress" in refused and "try again" in refused
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster_home"))   # dagster.yaml's storage reads it
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(data / "dagster_home"))) as instance:
        runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS, "the refused run is not queued"


def test_the_run_that_went_ahead_gives_what_a_single_run_gives(reference, two_at_once):
    data, codes, texts = two_at_once
    assert differing_intake(reference.intake, intake_state(data)) == []
    assert differing_tables(reference.marts, marts(data / "warehouse.duckdb")) == []
    releases = [p for p in (data / "publish" / "releases").glob("*/*") if p.is_dir()]
    assert len(releases) == 1 and releases[0] == (data / "publish" / "latest").resolve()


def test_the_whole_cycle_twice_on_the_same_inputs_gives_the_same_marts_and_packages(reference, two_at_once):
    data = two_at_once[0]
    again = release_state((data / "publish" / "latest").resolve())
    assert again["files"] == reference.release["files"]   # every published file, byte for byte
    assert differing_tables(reference.release["inputs"], again["inputs"]) == []
    differences = manifest_differences(reference.release["manifest"], again["manifest"])
    assert "run_id" in differences and differences <= RUN_FIELDS, differences
    assert differing_tables(reference.marts, marts(data / "warehouse.duckdb")) == []
    analyst = analyst_copy(data)
    first = analyst_copy(reference.data_dir)
    assert analyst and differing_tables(first, analyst) == []


def analyst_copy(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The analyst copy's Parquet tables (a file, or a folder with a file per site), without the time each
    model was fitted (``fitted_at``)."""
    tables = {}
    latest = data_dir / "analyst" / "latest"
    for path in sorted([*latest.glob("*.parquet"), *(p for p in latest.iterdir() if p.is_dir())]):
        frame = pd.read_parquet(path)
        if path.is_dir():   # the partition column comes back as a category
            frame["site_id"] = frame["site_id"].astype(str)
        tables[path.name] = canonical(frame.drop(columns=[c for c in frame.columns if c == "fitted_at"]))
    return tables


def test_the_marts_of_two_runs_are_equal_to_the_last_bit(reference, two_at_once):
    data = two_at_once[0]
    assert differing_tables(reference.marts, marts(data / "warehouse.duckdb"), tolerance=0) == []
