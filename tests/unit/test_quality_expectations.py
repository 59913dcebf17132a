"""The Great Expectations suites in expectations/ are generated from the dictionary and cannot drift."""

import json

from orchestration.quality.expectations import GENERATED_NAME, generated_suite, load_suites, suite_folder, suite_text
from orchestration.quality.rules import all_row_rules
from support import demo_registry


def test_the_committed_generated_suite_equals_what_the_generator_writes():
    registry = demo_registry()
    committed = (suite_folder(registry) / GENERATED_NAME).read_text(encoding="utf-8")
    assert committed == suite_text(generated_suite(registry)), \
        "regenerate with: python -m orchestration.quality.expectations"


def test_the_generated_suite_has_one_expectation_per_required_field_code_list_and_range():
    registry = demo_registry()
    by_rule = {e["meta"]["rule_id"]: e for e in generated_suite(registry)["expectations"]}
    assert by_rule["completeness.required.asa_class"]["type"] == "expect_column_values_to_not_be_null"
    assert by_rule["conformance.code.asa_class"]["kwargs"]["value_set"] == ["1", "2", "3", "4", "5"]
    assert by_rule["plausibility.range.date_of_birth"]["kwargs"] == {"column": "age_years", "min_value": 16,
                                                                    "max_value": 110}
    assert by_rule["plausibility.duplicate_case"]["kwargs"]["column_list"] == ["site_id", "case_id"]
    required = [v for v in registry.variables if v.required]
    assert sum(e["type"] == "expect_column_values_to_not_be_null" for e in by_rule.values()) == len(required)


def test_every_suite_expectation_names_a_rule_of_the_catalogue_with_its_version_and_field():
    registry = demo_registry()
    rules = {r.rule_id: r for r in all_row_rules(registry)}
    for suite in load_suites(registry):
        for expectation in suite["expectations"]:
            meta = expectation["meta"]
            rule = rules[meta["rule_id"]]
            assert (meta["rule_version"], meta["field"], meta["severity"]) == (rule.version, rule.field, rule.severity)
            json.dumps(expectation)  # plain JSON, no GX objects


def test_great_expectations_accepts_every_suite_file():
    import great_expectations as gx

    gx.get_context(mode="ephemeral")
    for document in load_suites(demo_registry()):
        suite = gx.ExpectationSuite(**document)
        assert len(suite.expectations) == len(document["expectations"])
