"""Funnel-plot control limits per period and measure, for drawing funnels.

Limits for O/E against expected counts at each policy level, adjusted for
overdispersion exactly as the site flags are (orchestration/riskmodels/results.py).
"""

from orchestration.registry import load_registry
from orchestration.riskmodels.results import site_results
from orchestration.settings import registry_dir


def model(dbt, session):
    dbt.config(materialized="table")
    site_periods = dbt.ref("int_site_period_outcomes").df()
    measures = dbt.ref("stg_registry__measures").df()[["measure_id", "label", "direction"]]
    _, curves = site_results(site_periods, measures, load_registry(registry_dir()).policy)
    return curves
