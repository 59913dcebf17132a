"""Quality checks against the synthetic collaborative's ground truth, and GX against SQL.

A small collaborative (2,000 cases, 6 sites, 2 quarters) is generated with
planted defects and loaded through intake; ``truth/defects.csv`` says which
case and field each defect is on.
"""

import pandas as pd
import pytest

from orchestration.intake import receive_file
from orchestration.quality.expectations import load_suites
from orchestration.quality.run import run_quality
from orchestration.settings import Paths
from orchestration.synth import generate_collaborative
from support import SECRET, demo_registry, warehouse


@pytest.fixture(scope="module")
def collaborative(tmp_path_factory):
    registry = demo_registry()
    root = tmp_path_factory.mktemp("truth")
    generate_collaborative(registry, root / "source", cases=2000, sites=6, periods=2, seed=11)
    folders = Paths(root / "data").ensure()
    with warehouse(folders, registry) as con:
        for path in sorted((root / "source" / "landing").rglob("*")):
            if path.is_file():
                receive_file(con, registry, folders, path, path.parent.name, SECRET)
        run_quality(con, registry, folders)
        findings = con.execute("select * from quality.findings").df()
        queries = con.execute("select * from quality.queries").df()
        current = con.execute("select c.* from raw.cases c join intake.current_submission_periods s "
                              "on c.submission_id = s.submission_id and c.period = s.period").df()
    defects = pd.read_csv(root / "source" / "truth" / "defects.csv", dtype=str)
    problems = pd.read_csv(root / "source" / "truth" / "file_problems.csv", dtype=str)
    rejected = set(problems.loc[problems.expected_outcome == "rejected", "file"])
    return registry, defects[~defects.file.isin(rejected)], findings, queries, current


def test_at_least_99_percent_of_injected_defects_become_queries_on_the_right_case_and_field(collaborative):
    registry, defects, findings, queries, current = collaborative
    assert len(defects) >= 10 and defects.kind.nunique() >= 6
    raised = set(zip(queries.site_id, queries.case_id, queries.field))
    caught = [(d.site_id, d.case_id, d.field) in raised for d in defects.itertuples()]
    missed = defects[[not c for c in caught]]
    assert sum(caught) / len(caught) >= 0.99, missed.to_string()


def test_every_defect_kind_is_caught_by_a_rule_of_the_expected_category(collaborative):
    registry, defects, findings, queries, current = collaborative
    expected = {"out_of_range": "plausibility", "impossible_value": "plausibility", "invalid_code": "conformance",
                "missing_required": "completeness", "date_order": "plausibility", "duplicate_case": "plausibility",
                "unparseable": "conformance"}
    categories = {(q.site_id, q.case_id, q.field): set() for q in queries.itertuples()}
    for q in queries.itertuples():
        categories[(q.site_id, q.case_id, q.field)].add(q.category)
    for d in defects.itertuples():
        assert expected[d.kind] in categories.get((d.site_id, d.case_id, d.field), set()), d


def test_clean_records_raise_no_blocking_query(collaborative):
    registry, defects, findings, queries, current = collaborative
    defective = set(zip(defects.site_id, defects.case_id))
    blocking = queries[(queries.severity == "blocking") & queries.case_id.notna()]
    on_clean = blocking[[(s, c) not in defective for s, c in zip(blocking.site_id, blocking.case_id)]]
    assert on_clean.empty, on_clean[["case_id", "field", "rule_id", "observed"]].to_string()


def test_every_query_message_names_its_case_and_quotes_the_dictionary_definition(collaborative):
    registry, defects, findings, queries, current = collaborative
    definitions = {v.name: v.definition for v in registry.variables}
    rows = queries[queries.case_id.notna()]
    for q in rows.itertuples():
        assert q.message.startswith(f"Case {q.case_id}, {q.label}: ")
        assert f'Definition: "{definitions[q.field]}"' in q.message


def test_the_great_expectations_suites_find_exactly_the_sql_failures_they_cover(collaborative):
    from orchestration.quality.gx_validate import covered_rule_ids, gx_failures

    registry, defects, findings, queries, current = collaborative
    suites = load_suites(registry)
    covered = covered_rule_ids(suites)
    assert {"completeness.required.asa_class", "conformance.code.sex", "plausibility.range.albumin",
            "plausibility.duplicate_case", "plausibility.temporal.discharge_before_operation"} <= covered
    sql = {(f.site_id, f.case_id, f.field, f.rule_id) for f in findings.itertuples()
           if f.level == "row" and f.rule_id in covered}
    gx = gx_failures(current, suites)
    assert len(sql) >= 10
    assert gx == sql
