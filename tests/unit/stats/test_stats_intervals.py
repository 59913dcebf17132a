"""Exact intervals checked against scipy's distributions and hand-worked values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from orchestration.stats import clopper_pearson_interval, level_label, oe_interval, oe_table, poisson_interval


def test_exact_poisson_interval_matches_chi_square_closed_form():
    observed = np.array([0, 1, 3, 7, 20, 150])
    expected = np.array([2.0, 1.2, 1.5, 9.1, 14.0, 160.0])
    lower, upper = oe_interval(observed, expected, 0.95)
    for o, e, lo, hi in zip(observed, expected, lower, upper):
        want_lo = 0.0 if o == 0 else stats.chi2.ppf(0.025, 2 * o) / (2 * e)
        want_hi = stats.chi2.ppf(0.975, 2 * (o + 1)) / (2 * e)
        assert lo == pytest.approx(want_lo, rel=1e-12)
        assert hi == pytest.approx(want_hi, rel=1e-12)


def test_exact_poisson_limits_are_where_the_poisson_tail_probabilities_equal_alpha_over_two():
    # Garwood: the lower limit mu_L solves P(X >= O | mu_L) = a/2, the upper P(X <= O | mu_U) = a/2.
    for o in (1, 3, 12):
        lo, hi = poisson_interval(o, 0.998)
        assert stats.poisson.sf(o - 1, lo) == pytest.approx(0.001, rel=1e-8)
        assert stats.poisson.cdf(o, hi) == pytest.approx(0.001, rel=1e-8)
        root_lo = optimize.brentq(lambda m: stats.poisson.sf(o - 1, m) - 0.001, 1e-9, 100)
        assert lo == pytest.approx(root_lo, rel=1e-7)


def test_hand_worked_oe_interval_for_three_observed_against_one_and_a_half_expected():
    # O = 3, E = 1.5: O/E = 2. 95% limits: chi2(0.025; 6)/3 and chi2(0.975; 8)/3.
    # chi2(0.025; 6) = 1.237344, chi2(0.975; 8) = 17.534546 (statistical tables).
    lower, upper = oe_interval(3, 1.5, 0.95)
    assert lower == pytest.approx(1.237344 / 3, abs=1e-6)  # 0.412448
    assert upper == pytest.approx(17.534546 / 3, abs=1e-6)  # 5.844849
    table = oe_table([3], [1.5])
    assert table.loc[0, "oe"] == 2.0
    assert table.loc[0, "oe_lower_95"] == pytest.approx(0.412448, abs=1e-6)
    assert table.loc[0, "oe_upper_95"] == pytest.approx(5.844849, abs=1e-6)


def test_zero_observed_has_lower_limit_zero_and_upper_from_two_degrees_of_freedom():
    lower, upper = oe_interval(0, 2.0, 0.95)
    assert lower == 0.0
    assert upper == pytest.approx(-np.log(0.025) / 2.0, rel=1e-12)  # chi2(0.975; 2)/2 = -ln(0.025)


def test_oe_table_has_named_columns_per_level_and_nan_for_zero_expected():
    table = oe_table(np.array([2, 5]), np.array([0.0, 4.0]))
    assert list(table.columns) == [
        "observed", "expected", "oe", "oe_lower_95", "oe_upper_95", "oe_lower_998", "oe_upper_998",
    ]
    assert np.isnan(table.loc[0, "oe"]) and np.isnan(table.loc[0, "oe_upper_95"])
    assert table.loc[1, "oe_lower_998"] < table.loc[1, "oe_lower_95"] < 1.25 < table.loc[1, "oe_upper_95"]
    assert table.loc[1, "oe_upper_95"] < table.loc[1, "oe_upper_998"]


def test_level_labels_drop_the_decimal_point():
    assert [level_label(x) for x in (0.95, 0.998, 0.99, 0.9)] == ["95", "998", "99", "90"]


def test_clopper_pearson_matches_beta_quantiles_and_binomial_tails():
    x = np.array([0, 1, 7, 30, 30])
    n = np.array([10, 25, 40, 30, 200])
    lower, upper = clopper_pearson_interval(x, n, 0.95)
    assert lower[0] == 0.0 and upper[3] == 1.0
    for xi, ni, lo, hi in zip(x, n, lower, upper):
        if 0 < xi:
            assert stats.binom.sf(xi - 1, ni, lo) == pytest.approx(0.025, rel=1e-7)
        if xi < ni:
            assert stats.binom.cdf(xi, ni, hi) == pytest.approx(0.025, rel=1e-7)
    # Beta-quantile closed form for x = 7, n = 40.
    assert lower[2] == pytest.approx(stats.beta.ppf(0.025, 7, 34), rel=1e-12)
    assert upper[2] == pytest.approx(stats.beta.ppf(0.975, 8, 33), rel=1e-12)


def test_exact_poisson_interval_covers_at_least_nominally():
    rng = np.random.default_rng(7)
    for mean in (0.5, 2.0, 8.0):
        counts = rng.poisson(mean, 20000)
        lower, upper = poisson_interval(counts, 0.95)
        coverage = np.mean((lower <= mean) & (mean <= upper))
        assert coverage >= 0.945


@settings(max_examples=80, deadline=None)
@given(o=st.integers(0, 500), e=st.floats(0.05, 500))
def test_oe_interval_contains_the_estimate_and_widens_with_the_level(o, e):
    lo95, hi95 = oe_interval(o, e, 0.95)
    lo998, hi998 = oe_interval(o, e, 0.998)
    assert 0 <= lo998 <= lo95 <= o / e <= hi95 <= hi998
