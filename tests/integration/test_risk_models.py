"""Risk adjustment on the synthetic collaborative, against its known truth."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from orchestration.riskmodels import design_spec, fit_measure
from orchestration.riskmodels.results import site_results
from orchestration.stats import design_matrix, score
from orchestration.synth import generate_collaborative
from support import demo_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def collaborative(tmp_path_factory):
    registry = demo_registry()
    out = tmp_path_factory.mktemp("synth")
    generate_collaborative(registry, out, cases=80_000, sites=40, seed=99, defects=False)
    cases = pd.read_parquet(out / "truth" / "cases.parquet")
    effects = pd.read_csv(out / "truth" / "site_effects.csv")
    return registry, cases, effects


def measure_cases(cases, measure_id):
    counted = cases[cases[f"denominator_{measure_id}"]].copy()
    counted["is_event"] = counted[f"y_{measure_id}"].astype(bool)
    return counted


def test_the_stored_model_matches_statsmodels_on_the_same_design(collaborative):
    registry, cases, _ = collaborative
    measure = registry.measure("morbidity_30d")
    counted = measure_cases(cases, measure.id).reset_index(drop=True)
    fitted = fit_measure(counted, registry, measure)
    X, _ = design_matrix(counted, design_spec(registry, measure), outcome=counted["is_event"].astype(float))
    reference = sm.Logit(counted["is_event"].astype(float), X).fit(disp=False)
    table = fitted.coefficients.set_index("term")
    estimated = table.loc[reference.params.index]
    np.testing.assert_allclose(estimated["estimate"], reference.params, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(estimated["std_error"], reference.bse, rtol=1e-4)
    assert 0.6 < fitted.quality["c_statistic"] < 0.95
    assert abs(fitted.quality["calibration_slope"] - 1) < 1e-3   # in-sample ML fit is calibrated


def test_the_designated_outlier_sites_are_flagged(collaborative):
    registry, cases, effects = collaborative
    measures = pd.DataFrame([{"measure_id": m.id, "label": m.label, "direction": m.direction}
                             for m in registry.measures])
    measure = registry.measure("morbidity_30d")
    counted = measure_cases(cases, measure.id)
    fitted = fit_measure(counted, registry, measure)
    counted["p"] = score(counted, fitted.coefficients).to_numpy()
    grouped = counted.groupby(["site_id", "period"]).agg(
        cases=("p", "size"), observed=("is_event", "sum"), expected=("p", "sum"),
        variance=("p", lambda p: float((p * (1 - p)).sum()))).reset_index()
    grouped = grouped.assign(blinded_code="P", measure_id=measure.id, quality_status="green", is_included=True)
    results, _ = site_results(grouped, measures, registry.policy)
    designated = effects[effects["measure"] == measure.id].drop_duplicates("site_id").set_index("site_id")
    high = designated.index[designated["designation"] == "high_outlier"][0]
    low = designated.index[designated["designation"] == "low_outlier"][0]
    status = results.set_index(["site_id", "period"])["outlier_status"]
    assert (status[high] == "high").all(), status[high]
    assert (status[low] == "low").all(), status[low]
    plain = designated.index[designated["designation"] == "none"]
    plain_flags = status[status.index.get_level_values(0).isin(plain)]
    assert plain_flags.isin(["high", "low"]).mean() < 0.05
