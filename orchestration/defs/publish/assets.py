"""Publication: per-site packages and the coordinating-centre overview, released atomically."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ...publish.publication import NothingToPublish, PublicationWithheld, publish_period
from ..models.assets import MODEL_VERSIONS
from ..resources import CqiResource
from ..warehouse.dbt_assets import mart_models

MARTS = [get_asset_key_for_model([mart_models], name)
         for name in ("mart_site_results", "mart_funnel_limits", "fct_case_risk", "mart_collaborative_summary")]


class PublishConfig(dg.Config):
    period: str | None = None   # default: the latest period with included data


@dg.asset(group_name="publish", deps=MARTS + [MODEL_VERSIONS], pool="duckdb_writer")
def publication(context: dg.AssetExecutionContext, config: PublishConfig, cqi: CqiResource) -> dg.MaterializeResult:
    """Build every active site's package and the overview in staging, check them, then release."""
    try:
        published = publish_period(cqi.registry, cqi.paths, config.period, context.run.run_id)
    except NothingToPublish as exc:
        raise dg.Failure(str(exc)) from None
    except PublicationWithheld as exc:
        raise dg.Failure(str(exc), metadata={"problems": "\n".join(exc.problems[:50])}) from None
    return dg.MaterializeResult(metadata={
        "period": published.period, "files": published.files, "site_packages": published.site_packages,
        "release": dg.MetadataValue.path(str(published.release)),
        "seconds_by_phase": dg.MetadataValue.json(published.phases.rounded()),
        # sites whose cases were read to draw their CUSUM and VLAD (the others' charts were unchanged)
        "sites_cases_read": published.phases.counts.get("sites whose cases were read", 0),
    })
