"""``cqi queries``, ``override`` and ``publish``: main paths and errors on the shared demo deployment."""

from __future__ import annotations

import csv
import json

import pytest

from orchestration.quality.overrides import overrides_folder

pytestmark = pytest.mark.slow


def open_queries(deployment, site: str) -> list[dict]:
    with open(deployment.data_dir / "worklists" / site / "queries.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def site_with_queries(deployment) -> str:
    return next(p.parent.name for p in sorted((deployment.data_dir / "worklists").glob("*/queries.csv"))
                if open_queries(deployment, p.parent.name))


def test_queries_lists_the_sites_open_queries_with_their_messages(deployment):
    site = site_with_queries(deployment)
    expected = open_queries(deployment, site)
    done = deployment.cqi("queries", "--site", site)
    assert done.returncode == 0, done.stderr
    blocking = sum(q["severity"] == "blocking" for q in expected)
    assert f"{len(expected)} open queries for {site} ({blocking} blocking)" in done.stdout
    for query in expected:
        assert query["query_id"] in done.stdout
    assert expected[0]["message"][:60] in done.stdout


def test_queries_as_csv_is_the_worklist_file(deployment):
    site = site_with_queries(deployment)
    done = deployment.cqi("queries", "--site", site, "--format", "csv")
    assert done.returncode == 0
    assert done.stdout == (deployment.data_dir / "worklists" / site / "queries.csv").read_text(encoding="utf-8")


def test_queries_before_any_run_says_to_run_the_pipeline(empty_deployment):
    done = empty_deployment.cqi("queries", "--site", "S01")
    assert done.returncode == 1
    assert "no worklist for S01 yet" in done.stderr and "cqi run" in done.stderr


def test_override_records_a_request_for_the_next_quality_run(deployment):
    site = site_with_queries(deployment)
    query = open_queries(deployment, site)[0]
    done = deployment.cqi("override", query["query_id"].lower(), "--reason", "confirmed in the chart",
                          "--author", "cc-test")
    assert done.returncode == 0, done.stderr
    assert f"override of {query['query_id']} ({site}" in done.stdout
    requests = [json.loads(p.read_text()) for p in overrides_folder(deployment.data_dir).rglob("*.json")]
    mine = [r for r in requests if r.get("query_id") == query["query_id"]]
    assert mine and mine[0].get("reason") == "confirmed in the chart"


def test_override_of_an_unknown_query_id_points_to_the_list(deployment):
    done = deployment.cqi("override", "Q-0000000000000000", "--reason", "x", "--author", "y")
    assert done.returncode == 2
    assert "is not an open query" in done.stderr and "cqi queries --site" in done.stderr


def test_override_of_something_that_is_not_a_query_id_is_a_usage_error(deployment):
    done = deployment.cqi("override", "S01-000001", "--reason", "x", "--author", "y")
    assert done.returncode == 2
    assert "is not a query id" in done.stderr


def test_publish_releases_the_period_and_the_release_verifies(deployment):
    done = deployment.cqi("publish", "--period", "2025Q4")
    assert done.returncode == 0, done.stderr[-3000:]
    release = done.stdout.strip().splitlines()[-1].split(" published ", 1)[1]
    manifest = json.loads((deployment.data_dir / "publish" / "2025Q4" / "manifest.json").read_text())
    assert manifest, "a release has a manifest"
    assert (deployment.data_dir / "publish" / "2025Q4").resolve() == type(deployment.data_dir)(release).resolve()
    verified = deployment.cqi("publish", "--period", "2025Q4", "--verify")
    assert verified.returncode == 0, verified.stderr
    assert "reproduces byte for byte" in verified.stdout


def test_publish_of_a_period_outside_the_calendar_changes_nothing(deployment):
    before = sorted(p.name for p in (deployment.data_dir / "publish").iterdir())
    for period, message in (("2025-4", "is not a period"), ("2031Q1", "not in the registry's calendar")):
        done = deployment.cqi("publish", "--period", period)
        assert done.returncode == 2, period
        assert message in done.stderr
    assert sorted(p.name for p in (deployment.data_dir / "publish").iterdir()) == before


def test_verify_of_a_period_never_published_says_how_to_publish_it(deployment):
    unpublished = next(p for p in ("2025Q1", "2025Q2", "2025Q3")
                       if not (deployment.data_dir / "publish" / p).exists())
    done = deployment.cqi("publish", "--period", unpublished, "--verify")
    assert done.returncode == 1
    assert f"cqi publish --period {unpublished}" in done.stderr


def test_publish_while_another_run_holds_the_warehouse_exits_4_and_publishes_nothing(deployment, lock_held):
    before = sorted(p.name for p in (deployment.data_dir / "publish" / "releases" / "2025Q4").iterdir())
    with lock_held(deployment.data_dir):
        done = deployment.cqi("publish", "--period", "2025Q4")
    assert done.returncode == 4
    assert "another pipeline run is in progress" in done.stderr
    assert sorted(p.name for p in (deployment.data_dir / "publish" / "releases" / "2025Q4").iterdir()) == before
