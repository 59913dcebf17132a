"""Great Expectations suites generated from the data dictionary, kept as files in git.

``expectations/<registry_id>/cases.json`` is a GX 1.x ExpectationSuite
written from the same ``Rule`` objects the SQL checks run, so a reviewer sees
every check in git and a test (``test_quality_expectations``) fails when the
committed file and the dictionary drift apart. Regenerate it with::

    python -m orchestration.quality.expectations

Each expectation's ``meta`` names its rule id, version, field, category and
severity: that is how a GX failure is matched to the SQL finding it must
equal. Hand-written suites (``expectations/<registry_id>/*.json`` other than
``cases.json``, for rules that GX expresses but the dictionary does not
derive, such as the temporal order in ``rules.yaml``) use the same meta.

Building the suite needs no Great Expectations import (4 s): it is plain JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..registry import Registry
from ..settings import EXPECTATIONS_DIR
from .rules import Rule, all_row_rules

GENERATED_NAME = "cases.json"
SEVERITY = {"blocking": "critical", "warning": "warning"}


def _meta(rule: Rule) -> dict:
    return {"rule_id": rule.rule_id, "rule_version": rule.version, "field": rule.field,
            "category": rule.category, "severity": rule.severity}


def _expectation(rule: Rule) -> dict | None:
    if rule.kind == "required":
        kind, kwargs = "expect_column_values_to_not_be_null", {"column": rule.column}
    elif rule.kind == "code":
        kind, kwargs = "expect_column_values_to_be_in_set", {"column": rule.column, "value_set": rule.params["codes"]}
    elif rule.kind == "range":
        kind, kwargs = "expect_column_values_to_be_between", {
            "column": rule.column, "min_value": rule.params["min"], "max_value": rule.params["max"]}
    elif rule.kind == "unique":
        kind, kwargs = "expect_compound_columns_to_be_unique", {"column_list": rule.params["columns"]}
    else:
        return None   # type conformance is decided at intake; hand-written SQL rules go in hand-written suites
    return {"type": kind, "kwargs": kwargs, "meta": _meta(rule), "severity": SEVERITY[rule.severity]}


def generated_suite(registry: Registry) -> dict:
    """The registry's generated suite as a GX 1.x ExpectationSuite JSON document."""
    expectations = [e for e in (_expectation(rule) for rule in all_row_rules(registry)) if e is not None]
    return {
        "name": f"{registry.id}.cases",
        "id": None,
        "expectations": expectations,
        "meta": {"registry": registry.id, "registry_version": registry.version,
                 "generated_by": "orchestration.quality.expectations",
                 "notes": "Generated from the data dictionary; do not edit by hand."},
        "notes": None,
    }


def suite_text(suite: dict) -> str:
    return json.dumps(suite, indent=2, sort_keys=False) + "\n"


def suite_folder(registry: Registry, root: Path = EXPECTATIONS_DIR) -> Path:
    return Path(root) / registry.id


def write_generated_suite(registry: Registry, root: Path = EXPECTATIONS_DIR) -> Path:
    target = suite_folder(registry, root) / GENERATED_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(suite_text(generated_suite(registry)), encoding="utf-8")
    return target


def load_suites(registry: Registry, root: Path = EXPECTATIONS_DIR) -> list[dict]:
    """Every suite file of the registry, generated first then hand-written, as JSON documents."""
    folder = suite_folder(registry, root)
    files = sorted(folder.glob("*.json"), key=lambda p: (p.name != GENERATED_NAME, p.name))
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]


if __name__ == "__main__":
    from ..registry import load_registry
    from ..settings import registry_dir

    print(write_generated_suite(load_registry(registry_dir())))
