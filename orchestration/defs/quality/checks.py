"""The collaborative-level data-quality gate.

Blocking with ERROR severity: when too few site-periods pass, nothing
downstream (dbt marts, publication) runs in the same run, whoever started it.
"""


import dagster as dg

from ..resources import CqiResource
from .assets import SITE_PERIOD_STATUS


@dg.asset_check(asset=SITE_PERIOD_STATUS, blocking=True,
                description="Enough sites pass data quality in the latest period for a fair comparison.")
def enough_sites_pass_quality(cqi: CqiResource) -> dg.AssetCheckResult:
    minimum = cqi.registry.policy.min_sites_passing
    with cqi.warehouse(read_only=True) as con:
        row = con.execute(
            "select period, count(*) filter (where status <> 'red'), count(*) from quality.site_period_status "
            "group by period order by period desc limit 1").fetchone()
    if row is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description="no site-period has been graded: nothing was submitted")
    period, passing, total = row
    return dg.AssetCheckResult(
        passed=passing >= minimum, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"period": period, "sites_passing": passing, "sites_graded": total, "minimum": minimum},
        description=f"{passing} of {total} sites pass in {period}; at least {minimum} needed",
    )
