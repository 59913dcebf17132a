"""The synthetic scenario of a registry (``<registry>/synth.yaml``).

The generator code knows nothing about surgery: true coefficients, case-mix
distributions, lab missingness, defects and file problems all come from this
file, so another registry gets synthetic data by writing its own scenario.
A registry without one still gets plausible-looking (uninformative) data
from the generic fallbacks in ``casemix``.

Loading checks what would otherwise fail late or, worse, silently: every
outcome term must be one of the measure's risk factors and must not name the
reference level, and every field must be a dictionary variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..registry import Registry
from .frame import parse_term

SCENARIO_FILE = "synth.yaml"

DEFAULT_FIELDS = {
    "case_id": "case_id", "site_id": "site_id", "record_number": None, "name": None, "birth_date": None,
    "age": None, "admission_date": None, "operation_date": None, "discharge_date": None, "death_date": None,
}


class ScenarioError(ValueError):
    """A synth.yaml that does not fit its registry."""


@dataclass(frozen=True)
class Scenario:
    fields: dict
    roster: dict = field(default_factory=dict)
    volume: dict = field(default_factory=dict)
    covariates: dict = field(default_factory=dict)
    lab_missingness: dict = field(default_factory=dict)
    episode: dict = field(default_factory=dict)
    outcomes: dict = field(default_factory=dict)
    site_effects: dict = field(default_factory=dict)
    defects: dict = field(default_factory=dict)
    file_problems: tuple = ()
    source: Path | None = None

    def field(self, role: str) -> str | None:
        return self.fields.get(role)

    def outcome_order(self) -> list[str]:
        """Measures with a model, parents before the measures ``given`` them."""
        ordered: list[str] = []
        pending = dict(self.outcomes)
        while pending:
            ready = [m for m, spec in pending.items() if spec.get("given") in (None, *ordered)]
            if not ready:
                raise ScenarioError(f"outcomes: circular 'given' among {sorted(pending)}")
            for measure in ready:
                ordered.append(measure)
                del pending[measure]
        return ordered


def _inferred_fields(registry: Registry) -> dict:
    """Structural fields a dictionary reveals by itself: a date of birth pseudonymised as an
    age at a reference date gives the birth date, the age and the operation (index) date."""
    for variable in registry.variables:
        pseudo = variable.pseudonymise
        if pseudo is not None and pseudo.method == "age_at":
            return {"birth_date": variable.name, "age": pseudo.output, "operation_date": pseudo.reference}
    return {}


def reference_level(registry: Registry, name: str) -> str | None:
    variable = registry.variable(name) if any(v.name == name for v in registry.variables) else None
    return next(iter(variable.codes)) if variable is not None and variable.codes else None


def _check(registry: Registry, scenario: Scenario) -> None:
    problems: list[str] = []
    names = {v.name for v in registry.variables}
    for role, name in scenario.fields.items():
        if name and role != "age" and name not in names:
            problems.append(f"fields.{role}: {name!r} is not a dictionary variable")
    measures = {m.id: m for m in registry.measures}
    for measure_id, spec in scenario.outcomes.items():
        if measure_id not in measures:
            problems.append(f"outcomes.{measure_id}: not a measure of {registry.id}")
            continue
        allowed = set(measures[measure_id].risk_factors)
        for term in spec.get("terms", {}):
            name, level = parse_term(term)
            if name not in allowed:
                problems.append(f"outcomes.{measure_id}: term {term!r} is not among the measure's risk factors")
            elif level is not None and level == reference_level(registry, name):
                problems.append(f"outcomes.{measure_id}: term {term!r} names the reference level")
        given = spec.get("given")
        if given and given not in scenario.outcomes:
            problems.append(f"outcomes.{measure_id}: given {given!r} has no model")
        for flag in (spec.get("realise") or {}).get("flags", {}):
            if flag not in names:
                problems.append(f"outcomes.{measure_id}: flag {flag!r} is not a dictionary variable")
    for kind, options in (scenario.defects.get("kinds") or {}).items():
        for option in options:
            if option.get("field") not in names:
                problems.append(f"defects.{kind}: field {option.get('field')!r} is not a dictionary variable")
    if problems:
        raise ScenarioError(f"{scenario.source}: " + "; ".join(problems))


def load_scenario(registry: Registry, path: Path | None = None) -> Scenario:
    """Read the registry's synth.yaml (or an empty scenario if it has none)."""
    path = Path(path) if path else Path(registry.folder) / SCENARIO_FILE
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    fields = {**DEFAULT_FIELDS, **_inferred_fields(registry), **(doc.get("fields") or {})}
    scenario = Scenario(
        fields=fields,
        roster=doc.get("roster") or {},
        volume=doc.get("volume") or {},
        covariates=doc.get("covariates") or {},
        lab_missingness=doc.get("lab_missingness") or {},
        episode=doc.get("episode") or {},
        outcomes=doc.get("outcomes") or {},
        site_effects=doc.get("site_effects") or {},
        defects=doc.get("defects") or {},
        file_problems=tuple(doc.get("file_problems") or ()),
        source=path,
    )
    _check(registry, scenario)
    return scenario
