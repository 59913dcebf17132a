"""The post-publication privacy checks are blocking, and each fails on a planted violation.

A copy of the reference deployment publishes once (its checks pass: the run
succeeds); then one violation per check is planted in the released folder,
each in a different site's package, and the three checks run again through
Dagster. Each must fail with ERROR severity naming the file it was planted
in, and the run must fail (blocking).
"""

from __future__ import annotations

import csv
import json

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

CHECKS = ("packages_reveal_no_other_site", "no_direct_identifier_published", "no_small_count_published")


def _raw_identifier(reference, site_id: str) -> str:
    """A medical record number as the site sent it (never stored, never published)."""
    source = next((reference.inputs / "landing" / site_id).glob("*.csv"))
    with open(source, newline="", encoding="utf-8") as handle:
        return next(csv.DictReader(handle))["medical_record_number"]


@pytest.fixture(scope="module")
def planted(reference, stage_server, tmp_path_factory):
    data = reference.copy(tmp_path_factory.mktemp("privacy") / "data")
    clean = stage_server.run("publication", data)   # the checks pass on what the pipeline released
    release = (data / "publish" / "latest").resolve()
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        names = dict(con.execute("select site_id, display_name from registry.sites").fetchall())
    packages = sorted(p.name for p in (release / "sites").iterdir())
    assert len(packages) >= 4
    first, second, third, fourth = packages[:4]
    files = {
        "packages_reveal_no_other_site": release / "sites" / first / "report.html",
        "no_direct_identifier_published": release / "sites" / second / "linked_records.csv",
        "no_small_count_published": release / "sites" / third / "my_results.csv",
        "raw_identifier": release / "sites" / fourth / "notes.csv",
    }
    with open(files["packages_reveal_no_other_site"], "a", encoding="utf-8") as handle:
        handle.write(f"<p>Compare with {names[second]}</p>\n")
    files["no_direct_identifier_published"].write_text("case_id,medical_record_number\nX-1,A123\n", encoding="utf-8")
    results = pd.read_csv(files["no_small_count_published"], dtype=str)
    assert "cases" in results.columns
    results.loc[results.index[0], "cases"] = "5"
    results.to_csv(files["no_small_count_published"], index=False)
    files["raw_identifier"].write_text(f"note\nchart {_raw_identifier(reference, fourth)} reviewed\n",
                                       encoding="utf-8")
    answer = stage_server.run("privacy_checks", data)
    line = next(line for line in answer["tail"] if line.startswith("CHECK_RESULTS "))
    return clean, answer, json.loads(line.removeprefix("CHECK_RESULTS ")), {k: v.relative_to(release)
                                                                            for k, v in files.items()}


def test_the_three_privacy_checks_are_blocking_asset_checks_on_the_publication():
    from orchestration.definitions import defs
    from orchestration.defs.publish import checks

    keys = {key.name for key in defs.resolve_asset_graph().asset_check_keys if key.asset_key.path == ["publication"]}
    assert set(CHECKS) <= keys
    for name in CHECKS:
        (spec,) = getattr(checks, name).check_specs
        assert spec.blocking, f"{name} must block"


def test_each_privacy_check_fails_on_its_planted_violation_and_fails_the_run(planted):
    clean, answer, results, files = planted
    assert clean["returncode"] == 0, "the checks must pass on the release as published\n" + "\n".join(clean["tail"])
    assert answer["returncode"] == 1, "a failed blocking check fails the run"
    for name in CHECKS:
        assert results[name]["passed"] is False, (name, results[name])
        assert results[name]["severity"] == "ERROR"
        assert str(files[name]) in results[name]["description"], (name, results[name]["description"])
    for name in CHECKS:   # each violation is caught by its own check, not by chance by another
        others = [other for other in CHECKS if other != name]
        assert not any(str(files[name]) in results[other]["description"] for other in others), name


@pytest.mark.xfail(strict=True, reason="no_direct_identifier_published looks for identifier column names and "
                                       "patient keys, not for identifier values: a medical record number in a "
                                       "published file under another heading passes (see docs/reliability.md)")
def test_a_raw_medical_record_number_in_a_published_file_fails_the_identifier_check(planted):
    clean, answer, results, files = planted
    assert str(files["raw_identifier"]) in results["no_direct_identifier_published"]["description"]
