"""Data-quality rules, derived from the data dictionary plus a registry's own.

Row-level rules: each has an id, a version, a Kahn category, a severity, a
threshold and a SQL condition over the warehouse's case columns that is true
when a row fails. The dictionary yields completeness (required fields),
conformance (code lists) and plausibility (ranges) rules; ``rules.yaml`` in
the registry folder adds hand-written ones (temporal order, cross-field
logic). Type conformance comes from intake (a cell that could not be cast)
and duplicate cases from a window over the current rows; both are described
here too (``BUILT_IN_RULES``) so every check has one catalogue entry.

Site-period checks (missingness, distribution, timeliness) live in
``site_checks.py``: they judge a site-period as a whole, not a row.

``problem`` is the plain-language sentence an abstractor reads, with
``{value}`` standing for the observed value; ``kind`` and ``params`` say
what the rule tests in a form the Great Expectations suite generator can read
(``expectations.py``), so the SQL and the GX suite come from one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..registry import Registry, Variable

RULE_VERSION = 1


@dataclass(frozen=True)
class Rule:
    rule_id: str
    version: int
    category: str            # conformance | completeness | plausibility | timeliness
    severity: str            # blocking | warning
    field: str               # the dictionary variable an abstractor looks at
    column: str              # the warehouse column the condition reads
    fails_when: str          # SQL, true when the row fails
    expected: str
    definition: str
    threshold: float = 0.0   # share of a site-period's rows that may fail before the check fails
    label: str = ""          # the field's label in the dictionary
    problem: str = ""        # sentence with {value}; empty: "the value '{value}' should be <expected>"
    kind: str = "sql"        # required | code | range | sql (how the GX generator reads it)
    params: dict = field(default_factory=dict, compare=False, hash=False)

    def problem_text(self) -> str:
        return self.problem or f"the value '{{value}}' should be {self.expected}"


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dictionary_rules(variable: Variable, threshold: float) -> list[Rule]:
    column = variable.warehouse_name
    common = dict(version=RULE_VERSION, field=variable.name, column=column, definition=variable.definition,
                  threshold=threshold, label=variable.label)
    rules = []
    if variable.required:
        rules.append(Rule(f"completeness.required.{variable.name}", category="completeness", severity="blocking",
                          fails_when=f'"{column}" is null', expected="a value (the field is required)",
                          problem="no value was given, but the field is required", kind="required", **common))
    if variable.codes:
        codes = ", ".join(_q(code) for code in variable.codes)
        listed = ", ".join(f"{code} ({label})" for code, label in variable.codes.items())
        rules.append(Rule(f"conformance.code.{variable.name}", category="conformance", severity="blocking",
                          fails_when=f'"{column}" is not null and "{column}" not in ({codes})',
                          expected=f"one of {listed}", problem=f"the value '{{value}}' is not one of {listed}",
                          kind="code", params={"codes": list(variable.codes)}, **common))
    low, high, unit, subject = variable.min, variable.max, variable.unit, "the value '{value}'"
    if variable.pseudonymise and variable.pseudonymise.method == "age_at":
        pseudo = variable.pseudonymise
        low, high, unit = pseudo.min, pseudo.max, pseudo.unit
        subject = f"the {(pseudo.label or 'age').lower()} computed from it, {{value}},"
    if low is not None or high is not None:
        parts = []
        if low is not None:
            parts.append(f'"{column}" < {low}')
        if high is not None:
            parts.append(f'"{column}" > {high}')
        unit_text = f" {unit}" if unit else ""
        expected = (f"between {low:g} and {high:g}{unit_text}" if low is not None and high is not None
                    else f"at least {low:g}{unit_text}" if low is not None else f"at most {high:g}{unit_text}")
        rules.append(Rule(f"plausibility.range.{variable.name}", category="plausibility", severity="blocking",
                          fails_when=f'"{column}" is not null and ({" or ".join(parts)})', expected=expected,
                          problem=f"{subject} is not {expected}", kind="range",
                          params={"min": low, "max": high}, **common))
    return rules


def registry_rules_document(registry: Registry) -> dict:
    """The registry's ``rules.yaml`` as read (empty when the registry has none)."""
    path = Path(registry.folder) / "rules.yaml"
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _registry_rules(registry: Registry) -> list[Rule]:
    rules = []
    for item in registry_rules_document(registry).get("rules", []):
        variable = registry.variable(item["field"])
        rules.append(Rule(item["id"], int(item.get("version", 1)), item["category"], item["severity"],
                          variable.name, variable.warehouse_name, item["fails_when"], item["expected"],
                          variable.definition,
                          float(item.get("threshold", registry.policy.rule_failure_threshold)),
                          label=variable.label, problem=item.get("problem", "")))
    return rules


def rules_for(registry: Registry) -> list[Rule]:
    """Every SQL row-level rule of the registry, dictionary-derived first."""
    threshold = registry.policy.rule_failure_threshold
    rules = [rule for variable in registry.variables for rule in _dictionary_rules(variable, threshold)]
    return rules + _registry_rules(registry)


def type_rule(registry: Registry, variable: Variable) -> Rule:
    """Type conformance of one variable: found at intake, when a cell could not be cast."""
    return Rule(f"conformance.type.{variable.name}", RULE_VERSION, "conformance", "blocking", variable.name,
                variable.warehouse_name, "false", f"a value of type {variable.type}", variable.definition,
                registry.policy.rule_failure_threshold, label=variable.label, kind="type")


def duplicate_rule(registry: Registry) -> Rule:
    """Each case number once per site (over the site's current rows, all periods)."""
    identifier = registry.variable("case_id")
    return Rule("plausibility.duplicate_case", RULE_VERSION, "plausibility", "blocking", identifier.name,
                identifier.warehouse_name, "false", "each case number once per site", identifier.definition,
                registry.policy.rule_failure_threshold, label=identifier.label,
                problem="the case number '{value}' appears more than once in the site's current data",
                kind="unique", params={"columns": ["site_id", identifier.warehouse_name]})


def built_in_rules(registry: Registry) -> list[Rule]:
    """Row-level rules not expressed as a SQL condition: type casts and duplicates."""
    typed = [type_rule(registry, v) for v in registry.variables if v.type not in ("string", "code")]
    return typed + [duplicate_rule(registry)]


def all_row_rules(registry: Registry) -> list[Rule]:
    """The whole row-level catalogue: SQL rules, type conformance, duplicates."""
    return rules_for(registry) + built_in_rules(registry)
