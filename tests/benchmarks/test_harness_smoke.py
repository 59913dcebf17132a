"""The benchmark harness, run end to end on a few hundred cases (the ``smoke`` scenario).

Why in the suite: the harness is only run by hand at S, M and L sizes, so a
broken harness would otherwise be found on the day someone needs figures.
No timing is asserted: only that every stage was measured and the floor ran.
"""

import json
import subprocess
import sys

import pytest

from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

STAGES = ["intake", "quality", "dbt_build", "risk_models", "publication"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("harness")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.harness", "--scenario", "smoke", "--work", str(root / "work"),
         "--results", str(root / "results")], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((root / "results" / "smoke.json").read_text())


@pytest.mark.parametrize("cycle", ["full", "incremental"])
def test_every_stage_of_both_cycles_has_a_time_and_a_peak_memory(result, cycle):
    figures = result[cycle]
    assert figures["success"], (figures["failed_steps"], figures["failed_checks"])
    assert set(STAGES) <= set(figures["stages"])
    for stage in STAGES:
        assert figures["stages"][stage]["wall_s"] > 0, stage
        assert figures["stages"][stage]["peak_rss_mib"] > 0, stage
    assert figures["cycle_s"] >= sum(figures["stages"][s]["wall_s"] for s in STAGES)
    assert figures["peak_rss_mib"] >= max(figures["stages"][s]["peak_rss_mib"] for s in STAGES)
    assert figures["ratio_to_floor"]["cycle"] > 0


def test_the_floor_ran_every_part_and_agrees_with_the_pipeline(result):
    for which in ("full", "incremental"):
        floor = result["floor"][which]
        assert set(floor["parts_s"]) == {"read_cast", "checks", "observed_expected"}
        assert all(seconds > 0 for seconds in floor["parts_s"].values()), floor["parts_s"]
        assert floor["sizes"]["rows"] > 0 and floor["peak_rss_mib"] > 0
    agreement = result["floor"]["agreement_with_pipeline"]
    assert agreement["matched_rows"] > 0
    assert agreement["identical_rows"] == agreement["matched_rows"]


def test_fixed_overheads_are_measured(result):
    overhead = result["overhead"]
    assert overhead["python_start_imports_s"] > 0
    assert overhead["dbt_parse_s"] > 0
    assert overhead["dagster_noop_run_s"] > 0


def test_the_incremental_cycle_records_one_changed_site_and_what_each_stage_processed(result):
    work = result["incremental"]["work"]
    assert len(result["resubmitted_files"]) == 1
    assert len(work["changed_sites"]) == 1
    assert work["intake"]["submissions"] == 1 and work["intake"]["sites"] == 1
    for stage in STAGES:
        if stage == "risk_models" and not work[stage]["models_fitted"]:   # kept by the refit policy: no work
            assert work[stage]["sites"] == 0 and not work[stage]["reprocesses_unchanged_sites"]
            continue
        assert work[stage]["sites"] >= 1, stage
        assert work[stage]["reprocesses_unchanged_sites"] == (work[stage]["sites"] > 1), stage


def test_the_readme_section_lists_every_stage(result):
    if str(PROJECT_ROOT) not in sys.path:   # ``pytest`` run without ``python -m`` does not add the project root
        sys.path.insert(0, str(PROJECT_ROOT))
    from benchmarks.harness.readme import scenario_section

    section = scenario_section(result)
    for stage in STAGES:
        assert f"| {stage} |" in section
    assert "Fixed overhead" in section


def test_dbt_s_threads_are_sampled_in_both_dbt_steps(result):
    sampled = result["full"]["profile"]["dbt_thread_by_step"]
    assert {"warehouse_models", "mart_models"} <= set(sampled)
    assert all(row["s"] > 0 and row["in"] for rows in sampled.values() for row in rows)
    assert any("task/run.py" in row["in"] for row in sampled["mart_models"]), "the models' own work is seen"
