"""From the generated frame to Arrow tables: what the sites send, and the truth.

Two views of the same cases: the *submission* view has the dictionary's
columns in dictionary order, booleans as 1/0 and blanks where the site left
a value out; the *truth* view keeps every true value (labs included), real
booleans (so the measures' SQL runs on it unchanged) and the answers the
tests need (probabilities, events, site effects, what was left blank).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..registry import Registry
from ..registry.model import Variable
from .frame import Frame

ARROW_TYPES = {"string": pa.string(), "code": pa.string(), "integer": pa.int64(), "number": pa.float64(),
               "date": pa.date32(), "boolean": pa.int8()}


def _column(frame: Frame, variable: Variable, text: dict[str, pa.Array], truth: bool) -> pa.Array:
    name = variable.name
    if name in text:
        return text[name]
    if name not in frame:
        return pa.nulls(frame.n, pa.bool_() if truth and variable.type == "boolean" else ARROW_TYPES[variable.type])
    values = frame[name]
    blank = None if truth else frame.blank.get(name)
    if variable.type == "code" or name in frame.levels:
        array = pa.array(frame.levels[name], pa.string()).take(pa.array(values.astype(np.int32)))
        return array if blank is None else pa.array(array.to_numpy(zero_copy_only=False), mask=blank)
    if variable.type == "boolean":
        bools = values.astype(bool)
        return pa.array(bools, mask=blank) if truth else pa.array(bools.astype(np.int8), mask=blank)
    if variable.type == "date":
        mask = np.isnat(values) if blank is None else (np.isnat(values) | blank)
        return pa.array(values.astype("datetime64[D]"), pa.date32(), mask=mask)
    floats = values.astype(np.float64)
    mask = np.isnan(floats) if blank is None else (np.isnan(floats) | blank)
    if variable.type == "integer":
        return pa.array(np.where(mask, 0, floats).astype(np.int64), mask=mask)
    return pa.array(np.where(mask, 0.0, floats), mask=mask)


def submission_table(frame: Frame, registry: Registry, text: dict[str, pa.Array]) -> pa.Table:
    """The dictionary's columns as a site would send them (blanks applied)."""
    return pa.table({v.name: _column(frame, v, text, truth=False) for v in registry.variables})


def truth_table(frame: Frame, registry: Registry, text: dict[str, pa.Array], extra: dict[str, pa.Array],
                leading: dict[str, pa.Array]) -> pa.Table:
    """Every case with its true values, then ``extra`` columns (age, p_, y_, effect_, missing_)."""
    columns: dict[str, pa.Array] = dict(leading)
    for variable in registry.variables:
        if variable.name not in columns:
            columns[variable.name] = _column(frame, variable, text, truth=True)
    for name, values in extra.items():
        columns[name] = values
    return pa.table(columns)
