"""The quality gate: a red site-period stays out of the marts, and a failing
collaborative-level check publishes nothing, in a scheduled run too."""

import shutil
from datetime import datetime

import dagster as dg
import duckdb
import pytest

from orchestration.intake import receive_file
from orchestration.settings import paths
from support import SECRET, demo_registry, site_file, warehouse

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CQI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CQI_PSEUDONYM_SECRET", SECRET.decode())
    monkeypatch.delenv("CQI_WAREHOUSE", raising=False)
    return paths().ensure()


def _red(cases):
    return {f"row{i}": {"asa_class": "9"} for i in range(0, cases, 4)}


def test_a_scheduled_run_publishes_nothing_when_too_few_sites_pass(data_dir):
    from orchestration.definitions import defs

    registry = demo_registry()
    assert registry.policy.min_sites_passing == 3
    # two clean sites and two red ones in the same period: 2 < 3 pass
    with warehouse(data_dir, registry) as con:
        for site, rows in (("S01", {}), ("S02", {}), ("S03", _red(40)), ("S04", _red(40))):
            path = site_file(registry, data_dir.landing, site, cases=40, **rows)
            receive_file(con, registry, data_dir, path, site, SECRET)
    shutil.rmtree(data_dir.landing)
    schedule = defs.resolve_schedule_def("publication_schedule")
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=datetime(2026, 1, 20, 6))
        requests = schedule.evaluate_tick(context).run_requests
        assert len(requests) == 1
        job = defs.resolve_job_def(requests[0].job_name or schedule.job_name)
        result = job.execute_in_process(instance=instance, raise_on_error=False, tags=requests[0].tags)
    checks = {e.event_specific_data.asset_check_key.name: e.event_specific_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["enough_sites_pass_quality"] is False
    materialised = {tuple(e.asset_key.path) for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert ("publication",) not in materialised
    assert not [p for p in data_dir.publish.rglob("*") if p.is_file()], "nothing may be published"
    with duckdb.connect(str(data_dir.warehouse), read_only=True) as con:
        grades = dict(con.execute("select site_id, status from quality.site_period_status").fetchall())
    assert grades == {"S01": "green", "S02": "green", "S03": "red", "S04": "red"}


def test_a_red_site_period_is_listed_as_not_included_in_the_marts_after_a_cycle(data_dir, tmp_path):
    import csv

    from orchestration.cycle import run_cycle
    from orchestration.synth import generate_collaborative

    registry = demo_registry()
    # real outcomes (risk models need events): a clean generated collaborative, one file made red
    generate_collaborative(registry, tmp_path / "source", cases=1500, sites=5, periods=1, seed=3, defects=False)
    shutil.copytree(tmp_path / "source" / "landing", data_dir.landing, dirs_exist_ok=True)
    target = sorted(data_dir.landing.rglob("*.csv"))[-1]
    red_site = target.parent.name
    with open(target, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows[::4]:
        row["asa_class"] = "9"
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with dg.instance_for_test() as instance:
        outcome = run_cycle(instance)
    assert "enough_sites_pass_quality" not in outcome.failed_checks, outcome
    with duckdb.connect(str(data_dir.warehouse), read_only=True) as con:
        grades = dict(con.execute("select site_id, status from quality.site_period_status").fetchall())
        rows = con.execute("select site_id, quality_status, is_included, cases, observed "
                           "from marts.mart_site_results").fetchall()
    assert grades[red_site] == "red" and sum(g != "red" for g in grades.values()) >= 3
    red = [r for r in rows if r[0] == red_site]
    assert red and all(r[1:] == ("red", False, None, None) for r in red)
    assert all(r[2] for r in rows if r[0] != red_site)
