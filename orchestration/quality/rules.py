"""Data-quality rules, derived from the data dictionary plus a registry's own.

Each rule has an id, a version, a Kahn category, a severity and a SQL
condition over the warehouse's case columns that is true when a row fails.
The dictionary yields conformance (code lists), completeness (required
fields) and plausibility (ranges) rules; ``rules.yaml`` in the registry folder
adds hand-written ones (temporal order, cross-field logic).
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dictionary_rules(variable: Variable, threshold: float) -> list[Rule]:
    column = variable.warehouse_name
    rules = []
    if variable.required:
        rules.append(Rule(f"completeness.required.{variable.name}", RULE_VERSION, "completeness", "blocking",
                          variable.name, column, f'"{column}" is null', "a value (the field is required)",
                          variable.definition, threshold))
    if variable.codes:
        codes = ", ".join(_q(code) for code in variable.codes)
        listed = ", ".join(f"{code} ({label})" for code, label in variable.codes.items())
        rules.append(Rule(f"conformance.code.{variable.name}", RULE_VERSION, "conformance", "blocking",
                          variable.name, column, f'"{column}" is not null and "{column}" not in ({codes})',
                          f"one of {listed}", variable.definition, threshold))
    bounds = [(variable.min, variable.max)]
    if variable.pseudonymise and variable.pseudonymise.method == "age_at":
        bounds = [(variable.pseudonymise.min, variable.pseudonymise.max)]
    for low, high in bounds:
        if low is None and high is None:
            continue
        parts = []
        if low is not None:
            parts.append(f'"{column}" < {low}')
        if high is not None:
            parts.append(f'"{column}" > {high}')
        unit = f" {variable.unit}" if variable.unit else ""
        rules.append(Rule(f"plausibility.range.{variable.name}", RULE_VERSION, "plausibility", "blocking",
                          variable.name, column, f'"{column}" is not null and ({" or ".join(parts)})',
                          f"between {low:g} and {high:g}{unit}" if low is not None and high is not None
                          else f"at least {low:g}{unit}" if low is not None else f"at most {high:g}{unit}",
                          variable.definition, threshold))
    return rules


def _registry_rules(registry: Registry) -> list[Rule]:
    path = Path(registry.folder) / "rules.yaml"
    if not path.is_file():
        return []
    rules = []
    for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules", []):
        variable = registry.variable(item["field"])
        rules.append(Rule(item["id"], int(item.get("version", 1)), item["category"], item["severity"],
                          variable.name, variable.warehouse_name, item["fails_when"], item["expected"],
                          variable.definition,
                          float(item.get("threshold", registry.policy.rule_failure_threshold))))
    return rules


def rules_for(registry: Registry) -> list[Rule]:
    """Every row-level rule of the registry, dictionary-derived first."""
    threshold = registry.policy.rule_failure_threshold
    rules = [rule for variable in registry.variables for rule in _dictionary_rules(variable, threshold)]
    return rules + _registry_rules(registry)
