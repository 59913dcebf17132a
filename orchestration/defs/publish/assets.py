"""Publication: per-site packages and the coordinating-centre overview, released atomically."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ...publish.analyst_copy import publish_analyst_copy
from ...publish.inputs import latest_period, read_inputs
from ...publish.packages import build_publication
from ...publish.privacy import cross_site_leaks, identifier_leaks, small_count_leaks
from ...publish.release import INPUTS, code_version, release, staging_folder, write_manifest
from ...settings import PROJECT_ROOT
from ..models.assets import MODEL_VERSIONS
from ..resources import CqiResource
from ..warehouse.dbt_assets import mart_models

MARTS = [get_asset_key_for_model([mart_models], name)
         for name in ("mart_site_results", "mart_funnel_limits", "fct_case_risk", "mart_collaborative_summary")]


class PublishConfig(dg.Config):
    period: str | None = None   # default: the latest period with included data


def dictionary_checksum(registry) -> str:
    from ...intake.archive import sha256_of

    return sha256_of(registry.folder / "dictionary.yaml")


@dg.asset(group_name="publish", deps=MARTS + [MODEL_VERSIONS], pool="duckdb_writer")
def publication(context: dg.AssetExecutionContext, config: PublishConfig, cqi: CqiResource) -> dg.MaterializeResult:
    """Build every active site's package and the overview in staging, check them, then release."""
    registry, folders = cqi.registry, cqi.paths
    with cqi.warehouse(read_only=True) as con:
        period = config.period or latest_period(con)
        if period is None:
            raise dg.Failure("nothing to publish: no site-period has included data")
        inputs = read_inputs(con, period)
        patient_keys = {r[0] for r in con.execute("select distinct patient_key from raw.cases "
                                                  "where patient_key is not null").fetchall()}
    if inputs.results[inputs.results["period"] == period].empty:
        raise dg.Failure(f"nothing to publish for {period}: no results in that period")
    staged = staging_folder(folders.publish, period, context.run_id)
    stamp = f"{period} (data version {inputs.models['model_version'].iloc[0].rsplit('.', 1)[-1]})"
    written = build_publication(inputs, staged, registry.name, registry.policy.small_cell_threshold,
                                registry.policy.min_c_statistic, stamp)
    problems = (cross_site_leaks(staged, inputs.sites, inputs.cases[["site_id", "case_id"]].drop_duplicates())
                + identifier_leaks(staged, registry, patient_keys)
                + small_count_leaks(staged, registry.policy.small_cell_threshold))
    if problems:
        raise dg.Failure("publication withheld: privacy checks failed", metadata={"problems": "\n".join(problems[:50])})
    inputs.save(staged / INPUTS)
    write_manifest(staged, {
        "period": period, "run_id": context.run_id, "stamp": stamp, "registry": {"id": registry.id, "version": registry.version,
                                                                 "dictionary_sha256": dictionary_checksum(registry)},
        "code_version": code_version(PROJECT_ROOT),
        "models": inputs.models[["measure_id", "model_version"]].to_dict("records"),
        "submissions": inputs.submissions.to_dict("records"),
    })
    target = release(folders.publish, staged, period, context.run_id[:8])
    publish_analyst_copy(folders.warehouse, folders.analyst, context.run_id[:8])
    return dg.MaterializeResult(metadata={
        "period": period, "files": len(written), "site_packages": int((target / "sites").exists()
                                                                      and len(list((target / "sites").iterdir()))),
        "release": dg.MetadataValue.path(str(target)),
    })
