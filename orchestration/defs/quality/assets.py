"""Quality assets: findings for the current data and each site-period's grade."""


import dagster as dg

from ...quality import compute_findings
from ...quality.worklists import write_worklists
from ..intake.assets import INTAKE_KEYS, REGISTRY_KEYS
from ..resources import CqiResource

FINDINGS = dg.AssetKey(["quality", "findings"])
SITE_PERIOD_STATUS = dg.AssetKey(["quality", "site_period_status"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FINDINGS, group_name="quality", deps=INTAKE_KEYS + REGISTRY_KEYS,
                     description="One row per failed rule on a case and field (current data)."),
        dg.AssetSpec(SITE_PERIOD_STATUS, group_name="quality", deps=[FINDINGS],
                     description="Green, yellow or red grade of each site-period."),
    ],
    pool="duckdb_writer",
)
def data_quality(context: dg.AssetExecutionContext, cqi: CqiResource):
    """Run every rule over the current rows and grade each site-period."""
    with cqi.warehouse() as con:
        findings = compute_findings(con, cqi.registry)
        grades = dict(con.execute(
            "select status, count(*) from quality.site_period_status group by status").fetchall())
        worklists = write_worklists(con, cqi.registry, cqi.paths.worklists)
    yield dg.MaterializeResult(asset_key=FINDINGS, metadata={"findings": findings, "worklists": len(worklists)})
    yield dg.MaterializeResult(asset_key=SITE_PERIOD_STATUS,
                               metadata={f"site_periods_{k}": v for k, v in sorted(grades.items())})
