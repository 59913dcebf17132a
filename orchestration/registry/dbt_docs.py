"""The dbt column documentation of the case table, derived from the dictionary.

A variable is defined once, in the registry's dictionary; the staging YAML's
case columns are generated from it (``python -m orchestration.registry.dbt_docs``)
and a test fails when the committed file is out of date.
"""

from __future__ import annotations

import sys

import yaml

from ..settings import DBT_PROJECT_DIR, registry_dir
from .loader import Registry, load_registry

TARGET = DBT_PROJECT_DIR / "models" / "staging" / "_staging__cases.yml"
LINEAGE = {
    "submission_id": "The submission the row came from (lineage).",
    "file_checksum": "SHA-256 of the submitted file (lineage).",
    "row_number": "Data row of the submitted file, counting from 1 below the header (lineage).",
    "period": "Reporting period of the operation (by the calendar), or the period the file names.",
}
NOT_NULL = {"site_id", "case_id", "period", "submission_id", "file_checksum", "row_number"}


def _description(column) -> str:
    variable = column.source
    if variable.pseudonymise and variable.pseudonymise.method == "hmac":
        return f"Keyed hash (HMAC-SHA256) of {variable.label.lower()}: {variable.definition}"
    if variable.pseudonymise:
        return f"{variable.pseudonymise.label or column.name} ({variable.pseudonymise.unit or ''}), from {variable.label.lower()}."
    unit = f" Unit: {variable.unit}." if variable.unit else ""
    codes = f" Codes: {', '.join(f'{k} = {v}' for k, v in variable.codes.items())}." if variable.codes else ""
    return f"{variable.label}. {variable.definition}{unit}{codes}"


def render(registry: Registry) -> str:
    columns = [{"name": c.name, "description": _description(c)} for c in registry.warehouse_columns]
    columns += [{"name": name, "description": text} for name, text in LINEAGE.items()]
    document = {"version": 2, "models": [{
        "name": "stg_registry__cases",
        "description": ("The current version of every case: rows of the latest accepted submission for their "
                        "site and period, typed, pseudonymised, one row per site and case number. Columns are "
                        "generated from the registry's data dictionary."),
        "columns": columns,
        "data_tests": [
            {"not_null_columns": {"arguments": {"columns": [c["name"] for c in columns if c["name"] in NOT_NULL]}}},
            {"unique_combination": {"arguments": {"columns": ["site_id", "case_id"]}}}],
    }]}
    header = "# Generated from the data dictionary by `python -m orchestration.registry.dbt_docs`: do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=110, allow_unicode=True)


if __name__ == "__main__":
    TARGET.write_text(render(load_registry(registry_dir())), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
