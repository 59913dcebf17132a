"""Reading a registry folder and checking that it holds together.

Errors are collected and raised together as one ``RegistryError`` so that a
coordinating centre fixes a definition in one pass, not one error at a time.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import duckdb
import yaml
from pydantic import ValidationError

from .calendar import periods
from .model import Calendar, Measure, PeriodSpan, Policy, Site, Variable


class RegistryError(ValueError):
    """A registry definition that cannot be used, with every problem found."""

    def __init__(self, folder: Path, problems: list[str]):
        self.folder = folder
        self.problems = problems
        super().__init__(f"registry definition in {folder} is invalid:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class WarehouseColumn:
    """A column of the warehouse's case table, after pseudonymisation."""

    name: str
    sql_type: str
    source: Variable


@dataclass(frozen=True)
class Registry:
    id: str
    name: str
    version: str
    folder: Path
    variables: tuple[Variable, ...]
    measures: tuple[Measure, ...]
    sites: tuple[Site, ...]
    calendar: Calendar
    policy: Policy
    unit: str = "case"
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def variable(self, name: str) -> Variable:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(f"{name!r} is not in the data dictionary of {self.id}")

    @property
    def direct_identifiers(self) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.direct_identifier)

    @cached_property
    def warehouse_columns(self) -> tuple[WarehouseColumn, ...]:
        """The case table's columns: identifiers replaced by their pseudonyms."""
        columns = []
        for variable in self.variables:
            pseudo = variable.pseudonymise
            if pseudo is None:
                columns.append(WarehouseColumn(variable.name, variable.sql_type, variable))
            elif pseudo.method == "hmac":
                columns.append(WarehouseColumn(pseudo.output, "VARCHAR", variable))
            else:
                columns.append(WarehouseColumn(pseudo.output, "INTEGER", variable))
        return tuple(columns)

    @property
    def periods(self) -> list[PeriodSpan]:
        return periods(self.calendar)

    def site_ids(self) -> list[str]:
        return [site.site_id for site in self.sites]

    def measure(self, measure_id: str) -> Measure:
        for measure in self.measures:
            if measure.id == measure_id:
                return measure
        raise KeyError(f"{measure_id!r} is not a measure of {self.id}")


def _read_yaml(path: Path, problems: list[str]) -> dict:
    if not path.is_file():
        problems.append(f"{path.name}: file not found")
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(f"{path.name}: not valid YAML ({exc})")
        return {}
    if not isinstance(loaded, dict):
        problems.append(f"{path.name}: must hold a mapping at the top level")
        return {}
    return loaded


def _validation_messages(where: str, exc: ValidationError) -> list[str]:
    return [f"{where}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            + (f" (got {err['input']!r})" if err.get("type") in ("literal_error", "enum") else "")
            for err in exc.errors()]


def _parse_each(model, items, where: str, key: str, problems: list[str]) -> list:
    parsed = []
    for position, item in enumerate(items or []):
        label = f"{where}[{(item or {}).get(key, position) if isinstance(item, dict) else position}]"
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as exc:
            problems.extend(_validation_messages(label, exc))
    return parsed


def _check_dictionary(variables: list[Variable], problems: list[str]) -> None:
    seen: dict[str, str] = {}
    names = [v.name for v in variables]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"dictionary: variable {name!r} is defined more than once")
    for variable in variables:
        for spelling in (variable.name, *variable.aliases):
            key = spelling.lower()
            if key in seen and seen[key] != variable.name and spelling in variable.aliases:
                problems.append(f"dictionary: name or alias {spelling!r} used by both {seen[key]} and {variable.name}")
            seen[key] = variable.name
        if variable.pseudonymise and variable.pseudonymise.output in seen:
            problems.append(f"dictionary: pseudonym output {variable.pseudonymise.output!r} clashes with a variable")
        if variable.pseudonymise and variable.pseudonymise.reference:
            ref = variable.pseudonymise.reference
            if not any(v.name == ref and v.type == "date" for v in variables):
                problems.append(f"dictionary: {variable.name} takes its age at {ref!r}, which is not a date variable")
    for needed in ("case_id", "site_id"):
        if needed not in seen:
            problems.append(f"dictionary: the variable {needed!r} is required in every registry")


def _check_measures(measures: list[Measure], columns: dict[str, str], problems: list[str]) -> None:
    """Bind every measure expression against an empty table of the warehouse schema."""
    con = duckdb.connect()
    con.execute("create table cases (" + ", ".join(f'"{n}" {t}' for n, t in columns.items()) + ")")
    ids = set()
    for measure in measures:
        if measure.id in ids:
            problems.append(f"measures: id {measure.id!r} is defined twice")
        ids.add(measure.id)
        expressions = {"event": measure.event, "denominator": measure.denominator,
                       **{f"exclusions.{k}": v for k, v in measure.exclusions.items()}}
        for part, expression in expressions.items():
            try:
                con.execute(f"select cast(({expression}) as boolean) from cases")
            except duckdb.Error as exc:
                problems.append(f"measures[{measure.id}].{part}: {expression!r} is not valid: {str(exc).splitlines()[0]}")
        for factor in measure.risk_factors:
            if factor not in columns:
                problems.append(f"measures[{measure.id}]: risk factor {factor!r} is not a warehouse column")
    con.close()


def _read_sites(path: Path, problems: list[str]) -> list[Site]:
    if not path.is_file():
        problems.append(f"{path.name}: file not found")
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [{k: (v or None) if k in ("active_from", "active_to") else (v or "") for k, v in row.items()}
                for row in csv.DictReader(handle)]
    sites = _parse_each(Site, rows, path.name, "site_id", problems)
    duplicates = {s.site_id for s in sites if [t.site_id for t in sites].count(s.site_id) > 1}
    if duplicates:
        problems.append(f"{path.name}: duplicate site ids {sorted(duplicates)}")
    if not sites:
        problems.append(f"{path.name}: no sites")
    return sites


def load_registry(folder: Path, sites_file: Path | None = None) -> Registry:
    """Read and validate the registry in ``folder``.

    ``sites_file`` (or ``CQI_SITES_FILE``) replaces the roster, for generated
    collaboratives whose sites are not the bundled ones.
    """
    folder = Path(folder)
    problems: list[str] = []
    if not folder.is_dir():
        raise RegistryError(folder, [f"folder {folder} does not exist"])
    header = _read_yaml(folder / "registry.yaml", problems)
    dictionary = _read_yaml(folder / header.get("dictionary", "dictionary.yaml"), problems)
    measures_doc = _read_yaml(folder / header.get("measures", "measures.yaml"), problems)

    variables = _parse_each(Variable, dictionary.get("variables"), "dictionary", "name", problems)
    if dictionary and not variables:
        problems.append("dictionary: no variables")
    _check_dictionary(variables, problems)
    measures = _parse_each(Measure, measures_doc.get("measures"), "measures", "id", problems)

    calendar = policy = None
    try:
        calendar = Calendar.model_validate(header.get("calendar") or {})
    except ValidationError as exc:
        problems.extend(_validation_messages("registry.yaml calendar", exc))
    try:
        policy = Policy.model_validate(header.get("policy") or {})
    except ValidationError as exc:
        problems.extend(_validation_messages("registry.yaml policy", exc))
    for key in ("id", "name", "version"):
        if not header.get(key):
            problems.append(f"registry.yaml: {key} is missing")

    roster = sites_file or os.environ.get("CQI_SITES_FILE") or folder / header.get("sites", "sites.csv")
    sites = _read_sites(Path(roster), problems)

    if problems:
        raise RegistryError(folder, problems)
    registry = Registry(
        id=str(header["id"]), name=str(header["name"]), version=str(header["version"]),
        folder=folder, variables=tuple(variables), measures=tuple(measures),
        sites=tuple(sites), calendar=calendar, policy=policy, unit=str(header.get("unit", "case")),
    )
    _check_measures(measures, {c.name: c.sql_type for c in registry.warehouse_columns}, problems)
    if problems:
        raise RegistryError(folder, problems)
    return registry
