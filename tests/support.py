"""Builders shared by tests: a data folder, a registry, and small site files.

Rows are built from the data dictionary, so a test names only the values it
is about and every other cell is a plausible clean value.
"""

from __future__ import annotations

import csv
from contextlib import contextmanager
from pathlib import Path

from orchestration.registry import Registry, load_registry
from orchestration.settings import REGISTRIES_DIR, Paths
from orchestration.warehouse import connect, ensure_schema

SECRET = b"test-secret"


def demo_registry() -> Registry:
    return load_registry(REGISTRIES_DIR / "general_surgery")


def clean_row(registry: Registry, site_id: str, number: int, period_month: int = 2) -> dict[str, str]:
    """A plausible clean case: every required field filled, values inside their ranges."""
    row: dict[str, str] = {}
    for variable in registry.variables:
        if variable.type == "boolean":
            row[variable.name] = "0"
        elif variable.type == "code":
            row[variable.name] = next(iter(variable.codes))
        elif variable.type in ("integer", "number"):
            low = variable.min if variable.min is not None else 1
            high = variable.max if variable.max is not None else low + 10
            value = low + (high - low) / 3
            row[variable.name] = str(int(value)) if variable.type == "integer" else f"{value:.1f}"
        elif variable.type == "date":
            row[variable.name] = ""
        else:
            row[variable.name] = ""
    day = 1 + number % 25
    row.update(
        case_id=f"{site_id}-{number:05d}", site_id=site_id, medical_record_number=f"MRN{site_id}{number:06d}",
        patient_name=f"Patient {number}", date_of_birth="1950-06-15",
        admission_date=f"2025-{period_month:02d}-{day:02d}", operation_date=f"2025-{period_month:02d}-{day:02d}",
        discharge_date=f"2025-{period_month:02d}-{min(day + 3, 28):02d}", death_date="",
    )
    return row


def write_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",", encoding: str = "utf-8",
              fieldnames: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fieldnames = fieldnames or list(rows[0])
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def site_file(registry: Registry, folder: Path, site_id: str, cases: int = 20, period_month: int = 2,
              name: str | None = None, **overrides_by_row: dict) -> Path:
    rows = [clean_row(registry, site_id, i, period_month) for i in range(1, cases + 1)]
    for key, changes in overrides_by_row.items():
        rows[int(key.removeprefix("row"))].update(changes)
    quarter = (period_month - 1) // 3 + 1
    return write_csv(folder / site_id / (name or f"{site_id}_2025Q{quarter}.csv"), rows)


@contextmanager
def warehouse(paths: Paths, registry: Registry):
    with connect(paths.warehouse) as con:
        ensure_schema(con, registry)
        yield con
