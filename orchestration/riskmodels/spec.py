"""Turning a measure's risk factors into a design specification.

The dictionary decides how a risk factor enters a model: numbers linearly,
booleans as 0/1, code lists as dummies (ordered code lists collapse sparse
levels into their neighbours, unordered ones into the reference). Missing
values are handled by the statistics library: median imputation plus a
missing indicator, never a dropped case (see orchestration/stats/logistic.py).
"""

from __future__ import annotations

from ..registry import Measure, Registry


def _variable_by_column(registry: Registry, column: str):
    for wc in registry.warehouse_columns:
        if wc.name == column:
            return wc
    raise KeyError(column)


def design_spec(registry: Registry, measure: Measure) -> dict[str, dict]:
    """Column -> {"kind": ..., "levels": [...]} for ``stats.design_matrix``."""
    spec: dict[str, dict] = {}
    for column in measure.risk_factors:
        wc = _variable_by_column(registry, column)
        variable = wc.source
        if wc.sql_type in ("BIGINT", "DOUBLE", "INTEGER"):
            spec[column] = {"kind": "numeric"}
        elif variable.type == "boolean":
            spec[column] = {"kind": "boolean"}
        elif variable.type == "code":
            spec[column] = {"kind": "ordinal" if variable.ordered else "categorical",
                            "levels": list(variable.codes)}
        else:
            raise ValueError(f"{measure.id}: risk factor {column} of type {variable.type} cannot enter a model")
    return spec
