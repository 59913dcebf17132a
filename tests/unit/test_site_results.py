"""Site results: every number against an independent computation."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from orchestration.riskmodels.results import funnel_curves, site_results
from support import demo_registry

MEASURES = pd.DataFrame({"measure_id": ["m"], "label": ["Mortality"], "direction": ["lower_is_better"]})


def frame(rows):
    base = {"blinded_code": "P-0", "period": "2025Q1", "measure_id": "m", "quality_status": "green",
            "is_included": True}
    out = pd.DataFrame([{**base, **r} for r in rows])
    out["variance"] = out["expected"] * (1 - out["expected"] / out["cases"])
    return out


@pytest.fixture
def policy():
    return demo_registry().policy


def test_oe_intervals_are_exact_poisson_limits(policy):
    rows = [{"site_id": f"S{i}", "cases": 200, "observed": o, "expected": 10.0} for i, o in enumerate([3, 10, 17, 0])]
    results, _ = site_results(frame(rows), MEASURES, policy)
    for row in results.itertuples():
        o, e = row.observed, row.expected
        lower = stats.chi2.ppf(0.025, 2 * o) / (2 * e) if o > 0 else 0.0
        upper = stats.chi2.ppf(0.975, 2 * (o + 1)) / (2 * e)
        assert row.oe == pytest.approx(o / e)
        assert row.oe_lower_95 == pytest.approx(lower, abs=1e-12)
        assert row.oe_upper_95 == pytest.approx(upper)
        assert row.oe_upper_998 == pytest.approx(stats.chi2.ppf(0.999, 2 * (o + 1)) / (2 * e))


def test_risk_standardised_rate_is_oe_times_the_collaborative_rate(policy):
    rows = [{"site_id": "A", "cases": 100, "observed": 12, "expected": 8.0},
            {"site_id": "B", "cases": 300, "observed": 18, "expected": 22.0},
            {"site_id": "C", "cases": 100, "observed": 5, "expected": 5.0}]
    results = site_results(frame(rows), MEASURES, policy)[0].set_index("site_id")
    overall = 35 / 500
    assert results.loc["A", "overall_rate"] == pytest.approx(overall)
    assert results.loc["A", "risk_standardised_rate"] == pytest.approx(12 / 8 * overall)
    assert results.loc["B", "observed_rate"] == pytest.approx(18 / 300)


def test_small_sites_are_reported_but_not_ranked_and_red_sites_are_not_included(policy):
    rows = [{"site_id": f"S{i}", "cases": 100 + i, "observed": 5 + i, "expected": 6.0} for i in range(6)]
    rows += [{"site_id": "SMALL", "cases": policy.min_cases - 1, "observed": 4, "expected": 1.0},
             {"site_id": "RED", "cases": 150, "observed": 9, "expected": 6.0, "is_included": False,
              "quality_status": "red"}]
    results = site_results(frame(rows), MEASURES, policy)[0].set_index("site_id")
    assert results.loc["SMALL", "outlier_status"] == "insufficient_cases"
    assert np.isnan(results.loc["SMALL", "percentile_rank"])
    assert results.loc["RED", "outlier_status"] == "not_included"
    assert results.loc[["RED"], ["cases", "observed", "expected", "oe"]].isna().all(axis=None)
    ranked = results["percentile_rank"].dropna()
    assert len(ranked) == 6 and ranked.min() == 0 and ranked.max() == 100


def test_a_site_far_outside_the_funnel_is_flagged_high_and_one_inside_is_as_expected(policy):
    rng = np.random.default_rng(3)
    rows = [{"site_id": f"S{i:02d}", "cases": 400, "observed": int(rng.poisson(20)), "expected": 20.0}
            for i in range(30)]
    rows.append({"site_id": "HIGH", "cases": 400, "observed": 60, "expected": 20.0})
    results = site_results(frame(rows), MEASURES, policy)[0].set_index("site_id")
    assert results.loc["HIGH", "outlier_status"] == "high"
    assert results.loc["HIGH", "oe"] > results.loc["HIGH", "funnel_upper_998"]
    inside = results[(results["oe"] < results["funnel_upper_998"]) & (results["oe"] > results["funnel_lower_998"])]
    assert (inside["outlier_status"] == "as_expected").all()


def test_under_no_true_site_effect_about_one_in_five_hundred_sites_is_flagged(policy):
    """100 sites with true O/E 1, repeated: the 99.8% flag rate stays near its nominal 0.2%."""
    rng = np.random.default_rng(11)
    flagged = total = 0
    for repetition in range(60):
        cases = rng.integers(50, 1500, size=100)
        p = 0.08
        observed = rng.binomial(cases, p)
        rows = [{"site_id": f"S{i:03d}", "cases": int(n), "observed": int(o), "expected": float(n * p)}
                for i, (n, o) in enumerate(zip(cases, observed))]
        results = site_results(frame(rows), MEASURES, policy)[0]
        flagged += int(results["outlier_status"].isin(["high", "low"]).sum())
        total += len(results)
    share = flagged / total
    assert share < 0.006, share   # nominal 0.002; discreteness and trimming make it a little lower
    assert flagged >= 2, "limits that never flag would pass the first check"


def test_funnel_curves_alone_are_exactly_the_curves_of_site_results(policy):
    """mart_funnel_limits uses funnel_curves; its table must be bit-identical to site_results' curves.

    Several measures and periods, a red site and a site with no cases in each
    group, one group whose sites are all red (no curve), one overdispersed
    group (limits adjusted) and one without, and a site missing a period.
    """
    rng = np.random.default_rng(7)
    measures = pd.DataFrame({"measure_id": ["mort", "readmit", "ssi"],
                             "label": ["Mortality", "Readmission", "Surgical site infection"],
                             "direction": ["lower_is_better", "lower_is_better", "higher_is_better"]})
    rows = []
    for measure_id, p in [("mort", 0.04), ("readmit", 0.1), ("ssi", 0.06)]:
        for period in ["2024Q4", "2025Q1", "2025Q2"]:
            spread = 0.5 if (measure_id, period) == ("readmit", "2025Q1") else 0.0
            for i in range(25):
                if (i, period) == (3, "2024Q4"):
                    continue
                cases = int(rng.integers(10, 900))
                effect = float(np.exp(rng.normal(0, spread)))
                rows.append({"site_id": f"S{i:02d}", "period": period, "measure_id": measure_id, "cases": cases,
                             "observed": int(rng.binomial(cases, min(p * effect, 0.9))),
                             "expected": float(cases * p * rng.uniform(0.9, 1.1))})
            rows[-1] |= {"is_included": False, "quality_status": "red"}
            rows[-2] |= {"cases": 0, "observed": 0, "expected": 0.0}
    for i in range(4):
        rows.append({"site_id": f"R{i}", "period": "2025Q3", "measure_id": "mort", "cases": 300, "observed": 12,
                     "expected": 11.0, "is_included": False, "quality_status": "red"})
    site_periods = frame(rows).sample(frac=1, random_state=1).reset_index(drop=True)

    results, expected_curves = site_results(site_periods, measures, policy)
    curves = funnel_curves(site_periods, measures, policy)
    pd.testing.assert_frame_equal(curves, expected_curves, check_exact=True)

    # the frame covers what it claims to
    phi = results.groupby(["measure_id", "period"])["funnel_phi"].max().dropna()
    assert (phi > 1).any() and (phi <= 1).any(), "want groups with and without the overdispersion adjustment"
    assert ("2025Q3", "mort") not in set(zip(curves["period"], curves["measure_id"]))
    assert len(set(zip(curves["period"], curves["measure_id"]))) == 9


def test_funnel_curves_of_no_included_sites_are_the_same_empty_frame(policy):
    rows = [{"site_id": "RED", "cases": 150, "observed": 9, "expected": 6.0, "is_included": False,
             "quality_status": "red"}]
    expected_curves = site_results(frame(rows), MEASURES, policy)[1]
    pd.testing.assert_frame_equal(funnel_curves(frame(rows), MEASURES, policy), expected_curves, check_exact=True)
