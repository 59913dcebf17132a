"""Query ids, messages and the site-period checks (missingness, distribution, timeliness)."""

import duckdb
import pytest

from orchestration.intake import receive_file
from orchestration.quality import compute_findings
from orchestration.quality.queries import query_id
from orchestration.quality.run import run_quality
from orchestration.quality.site_checks import site_checks_for
from orchestration.settings import Paths
from support import SECRET, demo_registry, site_file, warehouse


@pytest.fixture
def registry():
    return demo_registry()


@pytest.fixture
def folders(tmp_path):
    return Paths(tmp_path / "data").ensure()


def receive(con, registry, folders, *paths):
    for path in paths:
        receive_file(con, registry, folders, path, path.parent.name, SECRET)


def test_every_check_has_an_id_version_category_severity_and_threshold(registry):
    checks = {c.check_id: c for c in site_checks_for(registry)}
    assert checks["completeness.missingness.albumin"].threshold == registry.policy.missingness_threshold
    assert checks["plausibility.distribution.weight_kg"].category == "plausibility"
    assert checks["timeliness.submission_deadline"].category == "timeliness"
    assert all(c.severity == "warning" and c.version >= 1 for c in checks.values())


def test_the_query_id_is_the_same_in_sql_and_python_and_ignores_value_and_version(folders, registry):
    with warehouse(folders, registry) as con:
        receive(con, registry, folders, site_file(registry, folders.landing, "S01", cases=30, row3={"sex": "X"}))
        compute_findings(con, registry)
        row = con.execute("select query_id, case_id from quality.findings where rule_id = 'conformance.code.sex'"
                          ).fetchone()
    assert row == (query_id("S01", "S01-00004", "sex", "conformance.code.sex"), "S01-00004")
    assert query_id("S01", "S01-00004", "sex", "conformance.code.sex") != query_id("S02", "S01-00004", "sex",
                                                                                      "conformance.code.sex")


def test_a_message_quotes_the_code_list_and_the_definition(folders, registry):
    with warehouse(folders, registry) as con:
        receive(con, registry, folders, site_file(registry, folders.landing, "S01", cases=30, row0={"asa_class": "7"}))
        compute_findings(con, registry)
        message = con.execute("select message from quality.findings where rule_id = 'conformance.code.asa_class'"
                              ).fetchone()[0]
    definition = registry.variable("asa_class").definition
    assert message.startswith("Case S01-00001, ASA physical status class: the value '7' is not one of "
                              "1 (Normal healthy patient), 2 (Mild systemic disease)")
    assert message.endswith(f'Definition: "{definition}"')


def test_a_site_leaving_a_field_blank_far_more_than_the_collaborative_gets_a_missingness_warning(folders, registry):
    blanks = {f"row{i}": {"albumin": ""} for i in range(25)}
    with warehouse(folders, registry) as con:
        receive(con, registry, folders,
                site_file(registry, folders.landing, "S01", cases=40, **blanks),
                *[site_file(registry, folders.landing, s, cases=40) for s in ("S02", "S03", "S04")])
        compute_findings(con, registry)
        flagged = con.execute("select site_id, severity, observed from quality.findings "
                              "where rule_id = 'completeness.missingness.albumin'").fetchall()
        grades = dict(con.execute("select site_id, status from quality.site_period_status").fetchall())
    assert flagged == [("S01", "warning", "62.5%")]
    assert grades == {"S01": "yellow", "S02": "green", "S03": "green", "S04": "green"}


def test_a_site_whose_weights_look_like_pounds_gets_a_distribution_warning(folders, registry):
    pounds = {f"row{i}": {"weight_kg": str(150 + i % 7)} for i in range(40)}
    with warehouse(folders, registry) as con:
        receive(con, registry, folders, site_file(registry, folders.landing, "S01", cases=40, **pounds),
                *[site_file(registry, folders.landing, s, cases=40,
                            **{f"row{i}": {"weight_kg": str(60 + i % 20)} for i in range(40)})
                  for s in ("S02", "S03", "S04", "S05", "S06")])
        compute_findings(con, registry)
        flagged = con.execute("select site_id from quality.findings "
                              "where rule_id = 'plausibility.distribution.weight_kg'").fetchall()
    assert flagged == [("S01",)]


def test_a_late_first_submission_is_a_timeliness_query_that_does_not_change_the_grade(folders, registry):
    with warehouse(folders, registry) as con:
        receive(con, registry, folders, site_file(registry, folders.landing, "S01", cases=30))
        # received "now"; move its arrival to before the 2025Q1 deadline (2025-05-15) for a second site
        receive(con, registry, folders, site_file(registry, folders.landing, "S02", cases=30))
        con.execute("update intake.submissions set received_at = timestamp '2025-05-01 09:00' where site_id = 'S02'")
        run_quality(con, registry, folders, worklists=False)
        late = con.execute("select site_id, observed, expected from quality.findings "
                           "where category = 'timeliness'").fetchall()
        cards = dict(con.execute("select site_id, days_late from quality.scorecards").fetchall())
        grades = dict(con.execute("select site_id, status from quality.site_period_status").fetchall())
    assert [(s, e) for s, _, e in late] == [("S01", "by 2025-05-15")]
    assert cards["S02"] < 0 < cards["S01"]
    assert grades == {"S01": "green", "S02": "green"}
