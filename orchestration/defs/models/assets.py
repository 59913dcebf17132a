"""Risk models: fitted on the pooled window, stored as versioned coefficient tables."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ...riskmodels import fit_measure
from ...riskmodels.store import data_version, store_models
from ..resources import CqiResource
from ..warehouse.dbt_assets import warehouse_models

MODEL_VERSIONS = dg.AssetKey(["models", "model_versions"])
COEFFICIENTS = dg.AssetKey(["models", "coefficients"])
UPSTREAM = [get_asset_key_for_model([warehouse_models], name)
            for name in ("int_case_outcomes", "stg_registry__cases")]


def counted_cases(con, registry, measure):
    """Every counted case of the measure with its event flag and risk factors."""
    columns = ", ".join(f'c."{name}"' for name in measure.risk_factors)
    return con.execute(
        f"select o.is_event{', ' + columns if columns else ''} "
        "from intermediate.int_case_outcomes o "
        "join staging.stg_registry__cases c using (site_id, case_id) "
        "where o.is_counted and o.measure_id = ? order by o.site_id, o.case_id", [measure.id]).df()


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
    """Fit each measure's logistic model on the pooled counted cases of the reporting window."""
    registry = cqi.registry
    window = (registry.periods[0].period, registry.periods[-1].period)
    with cqi.warehouse() as con:
        fitted = [fit_measure(counted_cases(con, registry, m), registry, m) for m in registry.measures]
        versions = store_models(con, fitted, window, data_version(con, registry.version), registry.version)
    quality = {f"{m.measure_id}_c_statistic": dg.MetadataValue.float(float(m.quality["c_statistic"]))
               for m in fitted if m.risk_adjusted}
    yield dg.MaterializeResult(asset_key=MODEL_VERSIONS, metadata={"versions": ", ".join(versions), **quality})
    yield dg.MaterializeResult(asset_key=COEFFICIENTS,
                               metadata={"terms": sum(len(m.coefficients) for m in fitted)})
