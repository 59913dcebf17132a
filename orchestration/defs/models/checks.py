"""The model-quality gate: a model below the policy's floors blocks publication."""

import dagster as dg

from ..resources import CqiResource
from .assets import MODEL_VERSIONS


@dg.asset_check(asset=MODEL_VERSIONS, blocking=True,
                description="Every current risk model reaches the policy's c-statistic and calibration floors.")
def risk_models_meet_quality_floors(cqi: CqiResource) -> dg.AssetCheckResult:
    policy = cqi.registry.policy
    low, high = policy.calibration_slope_range
    with cqi.warehouse(read_only=True) as con:
        rows = con.execute(
            "select model_version, c_statistic, calibration_slope from models.model_versions "
            "where is_current and risk_adjusted").fetchall()
    failing = [f"{v}: c={c:.3f}, slope={s:.2f}" for v, c, s in rows
               if c < policy.min_c_statistic or not (low <= s <= high)]
    return dg.AssetCheckResult(
        passed=not failing, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"models": len(rows), "failing": ", ".join(failing) or "none",
                  "min_c_statistic": policy.min_c_statistic, "calibration_slope_range": f"{low}-{high}"},
        description="; ".join(failing) if failing else "all current models meet the floors",
    )
