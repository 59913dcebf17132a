"""Site results per measure and period (see orchestration/riskmodels/results.py).

A dbt Python model so that the statistics (exact intervals, empirical-Bayes
shrinkage, overdispersed funnel limits) come from the one statistics library
the analysts use too, while the table stays in dbt's lineage and tests.
The results of measure-periods whose rows did not change are read back from
the last build (orchestration/riskmodels/stored_groups.py), and so are the
random-intercept fits of those whose numbers did not
(orchestration/riskmodels/stored_fits.py).
"""

from orchestration.registry import load_registry
from orchestration.riskmodels.results import site_results
from orchestration.riskmodels.stored_fits import StoredFits
from orchestration.riskmodels.stored_groups import StoredGroups
from orchestration.settings import registry_dir


def model(dbt, session):
    dbt.config(materialized="table")
    site_periods = dbt.ref("int_site_period_outcomes").df()
    measures = dbt.ref("stg_registry__measures").df()[["measure_id", "label", "direction"]]
    fits, groups = StoredFits.beside_warehouse(session), StoredGroups.beside_warehouse(session)
    results, _ = site_results(site_periods, measures, load_registry(registry_dir()).policy, fits=fits, groups=groups)
    fits.save()
    groups.save()
    return results
