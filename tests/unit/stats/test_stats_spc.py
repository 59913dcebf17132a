"""p-chart, risk-adjusted CUSUM and VLAD against hand-worked examples."""

import numpy as np
import pytest

from orchestration.stats import cusum_weights, p_chart, risk_adjusted_cusum, vlad

Y = [0, 1, 0, 1, 1]
P = [0.1, 0.2, 0.5, 0.1, 0.3]


def test_deterioration_cusum_hand_worked_five_cases():
    # R_A = 2: W = y ln 2 - ln(1 + p)
    # 1: -ln 1.1 = -0.095310          X = max(0, -0.095310)          = 0
    # 2: ln 2 - ln 1.2 = 0.510826     X = 0.510826
    # 3: -ln 1.5 = -0.405465          X = 0.510826 - 0.405465        = 0.105361
    # 4: ln 2 - ln 1.1 = 0.597837     X = 0.703198
    # 5: ln 2 - ln 1.3 = 0.430783     X = 1.133981  >= h = 1: signal
    chart = risk_adjusted_cusum(Y, P, odds_ratio=2.0, h=1.0)
    np.testing.assert_allclose(chart["w"], [-0.095310, 0.510826, -0.405465, 0.597837, 0.430783], atol=1e-6)
    np.testing.assert_allclose(chart["cusum"], [0.0, 0.510826, 0.105361, 0.703198, 1.133981], atol=1e-6)
    assert chart["signal"].tolist() == [False, False, False, False, True]


def test_improvement_cusum_uses_the_lower_form_hand_worked_five_cases():
    # R_A = 1/2: W = -y ln 2 - ln(1 - p/2); Z = min(0, Z - W)
    # 1: W = -ln 0.95 = 0.051293              Z = -0.051293
    # 2: W = -ln 2 - ln 0.9 = -0.587787       Z = min(0, -0.051293 + 0.587787) = 0
    # 3: W = -ln 0.75 = 0.287682              Z = -0.287682
    # 4: W = -ln 2 - ln 0.95 = -0.641854      Z = 0
    # 5: W = -ln 2 - ln 0.85 = -0.530628      Z = 0
    chart = risk_adjusted_cusum(Y, P, odds_ratio=0.5, h=1.0)
    np.testing.assert_allclose(chart["w"], [0.051293, -0.587787, 0.287682, -0.641854, -0.530628], atol=1e-6)
    np.testing.assert_allclose(chart["cusum"], [-0.051293, 0.0, -0.287682, 0.0, 0.0], atol=1e-6)
    assert not chart["signal"].any()


def test_improvement_cusum_signals_after_a_run_without_events():
    # p = 0.3, no events: each W = -ln(0.85) = 0.162519; Z reaches -2 at case ceil(2 / 0.162519) = 13
    chart = risk_adjusted_cusum(np.zeros(20), np.full(20, 0.3), odds_ratio=0.5, h=2.0)
    assert chart["signal"].idxmax() == 12 and not chart["signal"].iloc[:12].any()
    reset = risk_adjusted_cusum(np.zeros(20), np.full(20, 0.3), odds_ratio=0.5, h=2.0, reset=True)
    assert reset["cusum"].iloc[13] == pytest.approx(-0.162519, abs=1e-6)


def test_cusum_weight_is_the_log_likelihood_ratio_of_the_odds_multiplied_by_r_a():
    p = np.array([0.05, 0.4])
    odds = 3 * p / (1 - p)
    p_alt = odds / (1 + odds)
    np.testing.assert_allclose(cusum_weights([1, 1], p, 3.0), np.log(p_alt / p))
    np.testing.assert_allclose(cusum_weights([0, 0], p, 3.0), np.log((1 - p_alt) / (1 - p)))


def test_vlad_is_cumulative_expected_minus_observed():
    np.testing.assert_allclose(vlad(Y, P), [0.1, -0.7, -0.2, -1.1, -1.8])


def test_p_chart_centre_and_three_sigma_limits_per_period():
    chart = p_chart([5, 12, 3, 0], [50, 100, 40, 0], periods=["2024Q1", "2024Q2", "2024Q3", "2024Q4"])
    p0 = 20 / 190
    assert chart["centre"].iloc[0] == pytest.approx(p0)
    half = 3 * np.sqrt(p0 * (1 - p0) / np.array([50, 100, 40]))
    np.testing.assert_allclose(chart["upper"].iloc[:3], p0 + half)
    np.testing.assert_allclose(chart["lower"].iloc[:3], np.maximum(p0 - half, 0))
    assert chart["lower"].iloc[2] == 0.0  # p0 - 3 sigma < 0 is clipped at 0
    assert chart["signal"].tolist() == [False, False, False, False]
    assert np.isnan(chart["rate"].iloc[3])
    assert p_chart([30, 2], [100, 100])["signal"].tolist() == [True, True]


def _reference_cusum(w, h, lower, reset):
    """The recursion as written in Steiner et al., one numpy element at a time."""
    values, signals, current = np.empty_like(w), np.zeros(w.shape, dtype=bool), 0.0
    for t, wt in enumerate(w):
        current = min(0.0, current - wt) if lower else max(0.0, current + wt)
        signals[t] = current <= -h if lower else current >= h
        values[t] = current
        if signals[t] and reset:
            current = 0.0
    return values, signals


@pytest.mark.parametrize("odds_ratio", [2.0, 0.5])
@pytest.mark.parametrize("reset", [True, False])
def test_cusum_equals_the_recursion_to_the_last_bit_on_long_series(odds_ratio, reset):
    rng = np.random.default_rng(7)
    p = rng.uniform(0.01, 0.6, 20_000)
    y = (rng.uniform(size=p.size) < p * rng.choice([0.5, 1.0, 2.0], p.size)).astype(float)
    chart = risk_adjusted_cusum(y, p, odds_ratio=odds_ratio, h=3.0, reset=reset)
    values, signals = _reference_cusum(cusum_weights(y, p, odds_ratio), 3.0, odds_ratio < 1, reset)
    assert chart["signal"].sum() > 5
    assert np.array_equal(chart["signal"].to_numpy(), signals)
    assert np.array_equal(chart["cusum"].to_numpy(), values)
    assert np.array_equal(np.signbit(chart["cusum"].to_numpy()), np.signbit(values))
