"""The registry definition: loaded, validated, with clear errors."""

import shutil

import pytest
import yaml

from orchestration.registry import RegistryError, load_registry, period_bounds
from orchestration.settings import REGISTRIES_DIR
from support import demo_registry


@pytest.fixture
def registry_copy(tmp_path):
    target = tmp_path / "general_surgery"
    shutil.copytree(REGISTRIES_DIR / "general_surgery", target)
    return target


def _edit_yaml(path, change):
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_the_demo_registry_defines_a_general_surgery_dictionary_with_four_outcomes():
    registry = demo_registry()
    assert 40 <= len(registry.variables) <= 60
    assert {m.id for m in registry.measures} >= {"mortality_30d", "morbidity_30d", "ssi_30d", "readmission_30d"}
    roles = {v.role for v in registry.variables}
    assert roles == {"identifier", "administrative", "risk_factor", "outcome", "date"}
    assert [p.period for p in registry.periods] == ["2025Q1", "2025Q2", "2025Q3", "2025Q4"]


def test_direct_identifiers_never_become_warehouse_columns():
    registry = demo_registry()
    columns = {c.name for c in registry.warehouse_columns}
    for variable in registry.direct_identifiers:
        assert variable.name not in columns
        assert variable.pseudonymise.output in columns
    assert "age_years" in columns


def test_a_code_variable_without_a_code_list_is_refused_with_its_name(registry_copy):
    def drop_codes(doc):
        next(v for v in doc["variables"] if v["name"] == "asa_class").pop("codes")
    _edit_yaml(registry_copy / "dictionary.yaml", drop_codes)
    with pytest.raises(RegistryError, match="asa_class: type code needs a code list"):
        load_registry(registry_copy)


def test_every_problem_is_reported_at_once(registry_copy):
    def break_dictionary(doc):
        doc["variables"][5]["type"] = "colour"
        doc["variables"].append(dict(doc["variables"][6]))          # duplicate name
    def break_measures(doc):
        doc["measures"][0]["event"] = "no_such_column > 1"
        doc["measures"][1]["risk_factors"] = ["age_years", "shoe_size"]
    _edit_yaml(registry_copy / "dictionary.yaml", break_dictionary)
    _edit_yaml(registry_copy / "measures.yaml", break_measures)
    with pytest.raises(RegistryError) as caught:
        load_registry(registry_copy)
    message = str(caught.value)
    assert "type" in message and "colour" in message
    assert "defined more than once" in message
    # the dictionary is broken, so measures are not bound yet; fix the dictionary and see them
    shutil.copy(REGISTRIES_DIR / "general_surgery" / "dictionary.yaml", registry_copy / "dictionary.yaml")
    with pytest.raises(RegistryError) as caught:
        load_registry(registry_copy)
    message = str(caught.value)
    assert "measures[mortality_30d].event" in message and "no_such_column" in message
    assert "risk factor 'shoe_size' is not a warehouse column" in message


def test_a_duplicate_site_and_a_bad_period_are_refused(registry_copy):
    sites = (registry_copy / "sites.csv").read_text().splitlines()
    (registry_copy / "sites.csv").write_text("\n".join(sites + [sites[1]]) + "\n")
    _edit_yaml(registry_copy / "registry.yaml", lambda d: d["calendar"].update(first_period="2025-01"))
    with pytest.raises(RegistryError) as caught:
        load_registry(registry_copy)
    assert "duplicate site ids ['S01']" in str(caught.value)
    assert "2025-01" in str(caught.value)


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        load_registry(tmp_path / "nowhere")


@pytest.mark.parametrize("period, first, last", [
    ("2025Q1", "2025-01-01", "2025-03-31"),
    ("2024Q4", "2024-10-01", "2024-12-31"),
    ("2024M02", "2024-02-01", "2024-02-29"),
])
def test_period_bounds_follow_the_calendar(period, first, last):
    start, end = period_bounds(period)
    assert (start.isoformat(), end.isoformat()) == (first, last)


def test_deadlines_and_data_lock_follow_the_policy():
    registry = demo_registry()
    q1 = registry.periods[0]
    assert (q1.deadline - q1.end).days == registry.calendar.submission_deadline_days
    assert (q1.data_lock - q1.end).days == registry.calendar.data_lock_days
