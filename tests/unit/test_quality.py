"""Data-quality rules derived from the dictionary, findings and site-period grades."""

import pytest

from orchestration.intake import receive_file
from orchestration.quality import compute_findings, rules_for
from orchestration.settings import Paths
from support import SECRET, demo_registry, site_file, warehouse


@pytest.fixture
def registry():
    return demo_registry()


@pytest.fixture
def folders(tmp_path):
    return Paths(tmp_path / "data").ensure()


def load_and_check(folders, registry, *files):
    with warehouse(folders, registry) as con:
        for path in files:
            receive_file(con, registry, folders, path, path.parent.name, SECRET)
        compute_findings(con, registry)
        # row-level findings only: files received "now" are late for 2025 (a site-period timeliness warning)
        findings = con.execute("select case_id, field, rule_id, severity, observed from quality.findings "
                               "where level = 'row' order by case_id, rule_id").fetchall()
        grades = dict(con.execute("select site_id, status from quality.site_period_status").fetchall())
    return findings, grades


def test_each_dictionary_constraint_yields_a_rule_with_id_version_category_and_severity(registry):
    rules = {r.rule_id: r for r in rules_for(registry)}
    assert rules["conformance.code.asa_class"].category == "conformance"
    assert rules["completeness.required.medical_record_number"].column == "patient_key"
    assert rules["plausibility.range.date_of_birth"].column == "age_years"
    assert rules["plausibility.range.albumin"].expected == "between 1 and 6 g/dL"
    assert "plausibility.temporal.discharge_before_operation" in rules   # from the registry's rules.yaml
    assert all(r.version >= 1 and r.severity in ("blocking", "warning") for r in rules.values())


def test_a_clean_file_raises_no_finding_and_is_green(folders, registry):
    findings, grades = load_and_check(folders, registry, site_file(registry, folders.landing, "S01", cases=30))
    assert findings == [] and grades == {"S01": "green"}


def test_defects_become_findings_on_the_right_case_and_field(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=200,
                     row0={"asa_class": "7"}, row1={"albumin": "45"}, row2={"sex": ""},
                     row3={"discharge_date": "2025-01-01"}, row4={"weight_kg": "abc"},
                     row5={"case_id": "S01-00001"})
    findings, grades = load_and_check(folders, registry, path)
    found = {(case, field, rule) for case, field, rule, _, _ in findings}
    assert ("S01-00001", "asa_class", "conformance.code.asa_class") in found
    assert ("S01-00002", "albumin", "plausibility.range.albumin") in found
    assert ("S01-00003", "sex", "completeness.required.sex") in found
    assert ("S01-00004", "discharge_date", "plausibility.temporal.discharge_before_operation") in found
    assert ("S01-00005", "weight_kg", "conformance.type.weight_kg") in found
    assert ("S01-00001", "case_id", "plausibility.duplicate_case") in found
    # 1 row in 200 per check is under the 2% threshold: the site-period is not red
    assert grades == {"S01": "green"}


def test_a_check_failing_above_its_threshold_makes_the_site_period_red(folders, registry):
    bad = {f"row{i}": {"asa_class": "9"} for i in range(5)}
    findings, grades = load_and_check(folders, registry, site_file(registry, folders.landing, "S02", cases=50, **bad))
    assert len([f for f in findings if f[2] == "conformance.code.asa_class"]) == 5
    assert grades == {"S02": "red"}


def test_a_corrected_resubmission_clears_the_old_findings(folders, registry):
    first = site_file(registry, folders.landing, "S01", cases=10, row0={"asa_class": "7"})
    load_and_check(folders, registry, first)
    corrected = site_file(registry, folders.landing, "S01", cases=10, name="S01_2025Q1_v2.csv")
    findings, grades = load_and_check(folders, registry, corrected)
    assert findings == [] and grades == {"S01": "green"}
