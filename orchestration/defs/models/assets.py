"""Risk models: fitted on the pooled window, stored as versioned coefficient tables.

A measure's current model is kept, not refitted, while the registry version
and the reporting window are unchanged and fewer than the policy's
``risk_model_refit_min_change`` share of its counted cases changed since the
fit (docs/decisions/risk-model-refit.md): a resubmitted site-quarter is then
scored with the kept coefficients, and no case is read into Python.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ...riskmodels.refresh import refresh_models
from ..resources import CqiResource
from ..warehouse.dbt_assets import dbt_project_code, warehouse_models

MODEL_VERSIONS = dg.AssetKey(["models", "model_versions"])
COEFFICIENTS = dg.AssetKey(["models", "coefficients"])
UPSTREAM = [get_asset_key_for_model([warehouse_models], name)
            for name in ("int_case_outcomes", "stg_registry__cases")]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(MODEL_VERSIONS, group_name="models", deps=UPSTREAM,
                     description="One row per fitted risk model with its window, data version and quality."),
        dg.AssetSpec(COEFFICIENTS, group_name="models", deps=[MODEL_VERSIONS],
                     description="Coefficients of every model version, as a long table scoring uses alone."),
    ],
    pool="duckdb_writer",
)
def risk_models(context: dg.AssetExecutionContext, cqi: CqiResource):
    """Fit each measure's logistic model on the pooled counted cases of the window, unless the refit policy keeps it."""
    registry = cqi.registry
    with cqi.warehouse() as con:
        refresh = refresh_models(con, registry, log=context.log.info, code=dbt_project_code())
        quality = con.execute("select measure_id, c_statistic from models.model_versions "
                              "where is_current and risk_adjusted order by measure_id").fetchall()
    summary = {"models_fitted": len(refresh.fitted), "models_kept": len(refresh.kept)}
    reasons = {f"{d.measure_id}_refit": dg.MetadataValue.text(d.reason) for d in refresh.decisions.values()}
    quality = {f"{measure_id}_c_statistic": dg.MetadataValue.float(float(c)) for measure_id, c in quality}
    yield dg.MaterializeResult(asset_key=MODEL_VERSIONS,
                               metadata={"versions": ", ".join(refresh.versions), **summary, **reasons, **quality})
    yield dg.MaterializeResult(asset_key=COEFFICIENTS,
                               metadata={"terms": sum(len(m.coefficients) for m in refresh.fitted), **summary,
                                         "kept_versions": ", ".join(refresh.kept) or "none"})
