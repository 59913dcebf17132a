"""Funnel-plot control limits per period and measure, for drawing funnels.

Limits for O/E against expected counts at each policy level, adjusted for
overdispersion exactly as the site flags are (orchestration/riskmodels/results.py).
``funnel_curves`` gives the same frame as ``site_results(...)[1]`` but computes
only the funnels, not the O/E intervals and reliability shrinkage that
``mart_site_results`` needs, so this model no longer repeats that work.
A measure-period whose rows ``mart_site_results`` has already seen gives the
curve it stored (orchestration/riskmodels/stored_groups.py).
"""

from orchestration.registry import load_registry
from orchestration.riskmodels.results import funnel_curves
from orchestration.riskmodels.stored_groups import StoredGroups
from orchestration.settings import registry_dir


def model(dbt, session):
    dbt.config(materialized="table")
    site_periods = dbt.ref("int_site_period_outcomes").df()
    measures = dbt.ref("stg_registry__measures").df()[["measure_id", "label", "direction"]]
    return funnel_curves(site_periods, measures, load_registry(registry_dir()).policy,
                         groups=StoredGroups.beside_warehouse(session))
