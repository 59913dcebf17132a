"""Quality assets: findings, grades, the query lifecycle and scorecards for the current data."""


import dagster as dg

from ...quality.run import run_quality
from ..intake.assets import INTAKE_KEYS, REGISTRY_KEYS
from ..resources import CqiResource

FINDINGS = dg.AssetKey(["quality", "findings"])
SITE_PERIOD_STATUS = dg.AssetKey(["quality", "site_period_status"])
QUERIES = dg.AssetKey(["quality", "queries"])
SCORECARDS = dg.AssetKey(["quality", "scorecards"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(FINDINGS, group_name="quality", deps=INTAKE_KEYS + REGISTRY_KEYS,
                     description="One row per failed check on a case and field, or on a site-period (current data)."),
        dg.AssetSpec(SITE_PERIOD_STATUS, group_name="quality", deps=[FINDINGS],
                     description="Green, yellow or red grade of each site-period (overridden values left out)."),
        dg.AssetSpec(QUERIES, group_name="quality", deps=[FINDINGS],
                     description="Data queries with their lifecycle (quality.queries, quality.query_events); "
                                 "abstractor worklists under worklists/<site>/."),
        dg.AssetSpec(SCORECARDS, group_name="quality", deps=[SITE_PERIOD_STATUS, QUERIES],
                     description="Per site-period scorecard: grade, per-category open queries, trend."),
    ],
    pool="duckdb_writer",
)
def data_quality(context: dg.AssetExecutionContext, cqi: CqiResource):
    """Apply pending overrides, check the sites whose inputs changed (every site when the registry or
    its rules changed), move their queries through their lifecycle, write their worklists."""
    with cqi.warehouse() as con:
        run = run_quality(con, cqi.registry, cqi.paths)
    if run.overrides.get("refused"):
        context.log.warning(f"{run.overrides['refused']} override request(s) refused: see overrides/refused/")
    yield dg.MaterializeResult(asset_key=FINDINGS, metadata={
        "findings": run.findings,
        "full_run": run.full,
        "sites_checked": run.sites_checked,
        "sites_unchanged": run.sites_unchanged,
        "sites_updated": run.sites_updated,
        "rows_checked": run.rows_checked,
        "worklist_sites_written": run.worklist_sites_written,
        **({"full_run_reason": run.full_reason} if run.full else {})})
    yield dg.MaterializeResult(asset_key=SITE_PERIOD_STATUS,
                               metadata={f"site_periods_{k}": v for k, v in sorted(run.grades.items())})
    yield dg.MaterializeResult(asset_key=QUERIES, metadata={
        "open_queries": run.open_queries, "worklists": len(run.worklists),
        **{f"events_{k}": v for k, v in sorted(run.events.items())},
        **{f"override_requests_{k}": v for k, v in sorted(run.overrides.items())}})
    yield dg.MaterializeResult(asset_key=SCORECARDS)
