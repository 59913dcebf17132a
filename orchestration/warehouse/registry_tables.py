"""Writing the registry definition into the warehouse.

dbt models read measures and sites from these tables, so the dbt project
holds no registry-specific SQL. Blinded site codes are derived with the
pseudonymisation key: stable across runs, meaningless without the key.
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb
import pandas as pd

from ..registry import Registry


def _exclusion_sql(exclusions: dict[str, str]) -> str:
    if not exclusions:
        return "cast(null as varchar)"
    whens = " ".join(f"when ({sql}) then '{name}'" for name, sql in exclusions.items())
    return f"(case {whens} end)"


def blinded_codes(site_ids: list[str], secret: bytes) -> dict[str, str]:
    """``P-`` plus 4 or more hex digits of an HMAC of the site id, unique in the roster."""
    for width in range(4, 65):
        codes = {s: "P-" + hmac.new(secret, s.encode(), hashlib.sha256).hexdigest()[:width].upper()
                 for s in site_ids}
        if len(set(codes.values())) == len(codes):
            return codes
    raise ValueError("site ids are not distinct")


def write_registry_tables(con: duckdb.DuckDBPyConnection, registry: Registry, secret: bytes) -> dict[str, int]:
    measures = pd.DataFrame([{
        "measure_id": m.id, "label": m.label, "direction": m.direction, "follow_up_days": m.follow_up_days,
        "event_sql": m.event, "denominator_sql": m.denominator, "exclusion_sql": _exclusion_sql(m.exclusions),
        "risk_factors": list(m.risk_factors),
    } for m in registry.measures])
    codes = blinded_codes(registry.site_ids(), secret)
    sites = pd.DataFrame([{**s.model_dump(), "blinded_code": codes[s.site_id]} for s in registry.sites])
    variables = pd.DataFrame([{
        "name": v.name, "warehouse_column": v.warehouse_name, "label": v.label, "type": v.type, "role": v.role,
        "required": v.required, "direct_identifier": v.direct_identifier, "unit": v.unit,
        "min_value": v.min, "max_value": v.max, "codes": ", ".join(v.codes or {}), "definition": v.definition,
    } for v in registry.variables])
    con.execute("create schema if not exists registry")
    for name, frame in (("measures", measures), ("sites", sites), ("variables", variables)):
        con.register("_frame", frame)
        con.execute(f"create or replace table registry.{name} as select * from _frame")
        con.unregister("_frame")
    return {"measures": len(measures), "sites": len(sites), "variables": len(variables)}
