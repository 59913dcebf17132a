"""Publication: per-site comparative feedback files."""


import dagster as dg

from ...publish.feedback import write_site_feedback
from dagster_dbt import get_asset_key_for_model

from ..resources import CqiResource
from ..warehouse.dbt_assets import mart_models


@dg.asset(group_name="publish", deps=[get_asset_key_for_model([mart_models], "mart_site_results")], pool="duckdb_writer")
def site_feedback(context: dg.AssetExecutionContext, cqi: CqiResource) -> dg.MaterializeResult:
    """Each site's results beside blinded peers, small counts suppressed, one folder per period."""
    with cqi.warehouse(read_only=True) as con:
        written = write_site_feedback(con, cqi.registry, cqi.paths.publish)
    return dg.MaterializeResult(metadata={"files": len(written), "folder": str(cqi.paths.publish)})
