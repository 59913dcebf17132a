"""Row defects: planned at known positions, applied to the submission table.

Every defect is recorded with the file, the 1-based data row, the dictionary
field and the injected and original text, so a test (or the pipeline's own
evaluation) can check that each one is caught as a data query on exactly
that case and field. Defects go only into ordinary CSV submissions, one per
row at most, so whole-file problems and row problems never mask each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFECT_COLUMNS = ["file", "site_id", "period", "case_id", "field", "kind", "row_number", "injected_value",
                  "original_value"]


@dataclass(frozen=True)
class Defect:
    file_index: int
    row: int            # index of the case in the frame (global)
    kind: str
    field: str
    injected: str
    original: str
    row_number: int = 0  # 1-based data row in the written file, set once the file's order is known


def _text_at(table: pa.Table, field: str, row: int) -> str:
    value = pc.cast(table.column(field).slice(row, 1), pa.string())[0].as_py()
    return "" if value is None else value


def _injected(option: dict, kind: str, table: pa.Table, row: int, rng: np.random.Generator) -> str:
    if kind == "duplicate_case":
        return _text_at(table, option["field"], row)
    if "value" in option:
        return str(option["value"])
    if "days_after" in option:
        reference = table.column(option["days_after"])[row].as_py()
        return (reference + timedelta(days=int(option.get("days", 1)))).isoformat()
    if "days_before" in option:
        reference = table.column(option["days_before"])[row].as_py()
        low, high = option.get("days", [1, 1])
        return (reference - timedelta(days=int(rng.integers(low, high + 1)))).isoformat()
    raise ValueError(f"defects.{kind}: an option needs value, days_after or days_before")


def plan_defects(spec: dict, table: pa.Table, rows_by_file: dict[int, np.ndarray], forced_file: int | None,
                 rng: np.random.Generator) -> list[Defect]:
    """Choose rows and values: ``share`` of the eligible rows, every kind at least once.

    ``rows_by_file`` maps each ordinary CSV file to its frame rows; the
    ``forced_file`` (the one to be resubmitted) also gets one defect of each
    of the scenario's ``resubmission_kinds``.
    """
    kinds = spec.get("kinds") or {}
    if not kinds or not rows_by_file:
        return []
    plan: list[tuple[int, int, str]] = []   # (file, row, kind)
    used: set[int] = set()
    if forced_file is not None:
        forced_kinds = [k for k in spec.get("resubmission_kinds") or [] if k in kinds]
        rows = rows_by_file[forced_file]
        picks = rng.choice(rows, size=min(len(forced_kinds), len(rows)), replace=False)
        for row, kind in zip(picks, forced_kinds):
            plan.append((forced_file, int(row), kind))
            used.add(int(row))
    files = np.concatenate([np.full(len(r), f) for f, r in rows_by_file.items()])
    rows = np.concatenate(list(rows_by_file.values()))
    free = np.flatnonzero(~np.isin(rows, list(used)))
    count = min(len(free), max(len(kinds), int(round(float(spec.get("share", 0.007)) * len(rows)))))
    chosen = np.sort(rng.choice(free, size=count, replace=False))
    kind_names = list(kinds)
    sequence = np.resize(np.arange(len(kind_names)), count)
    rng.shuffle(sequence)
    plan += [(int(files[i]), int(rows[i]), kind_names[k]) for i, k in zip(chosen, sequence)]

    defects = []
    for file_index, row, kind in plan:
        option = kinds[kind][int(rng.integers(len(kinds[kind])))]
        field = option["field"]
        original = "" if kind == "duplicate_case" else _text_at(table, field, row)
        defects.append(Defect(file_index, row, kind, field, _injected(option, kind, table, row, rng), original))
    return sorted(defects, key=lambda d: (d.file_index, d.row))


def apply_defects(table: pa.Table, defects: list[Defect]) -> pa.Table:
    """The table with each defect's text in place (affected columns become text)."""
    by_field: dict[str, list[Defect]] = {}
    for defect in defects:
        if defect.kind != "duplicate_case":
            by_field.setdefault(defect.field, []).append(defect)
    for field, items in by_field.items():
        items = sorted(items, key=lambda d: d.row)
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[[d.row for d in items]] = True
        values = pa.array([d.injected or None for d in items], pa.string())
        text = pc.replace_with_mask(pc.cast(table.column(field), pa.string()), pa.array(mask), values)
        table = table.set_column(table.schema.get_field_index(field), field, text)
    return table


def file_order(rows: np.ndarray, defects: list[Defect]) -> tuple[np.ndarray, list[Defect]]:
    """Frame rows in written order (a duplicated case appears twice, adjacent), and row numbers."""
    duplicated = np.array(sorted(d.row for d in defects if d.kind == "duplicate_case"), dtype=np.int64)
    order = np.sort(np.concatenate([rows, duplicated]), kind="stable")
    numbered = []
    for defect in defects:
        first = int(np.searchsorted(order, defect.row, side="left"))
        number = first + 2 if defect.kind == "duplicate_case" else first + 1
        numbered.append(replace(defect, row_number=number))
    return order, numbered
