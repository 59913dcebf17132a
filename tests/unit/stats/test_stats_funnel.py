"""Funnel limits against closed forms, hand-worked overdispersion, and a null simulation."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from orchestration.stats import (
    Z_95,
    Z_998,
    control_limits,
    estimate_overdispersion,
    exact_limits,
    funnel_curve,
    funnel_curve_for,
    funnel_table,
    trim_z,
)


def test_z_constants_are_the_two_sided_normal_quantiles():
    assert Z_95 == pytest.approx(stats.norm.ppf(0.975), abs=1e-6)
    assert Z_998 == pytest.approx(stats.norm.ppf(0.999), abs=1e-6)


def test_exact_limits_approach_the_normal_approximation_for_large_n():
    p0 = 0.1
    for n in (20000, 100000, 500000):
        for level, z in ((0.95, Z_95), (0.998, Z_998)):
            lower, upper = exact_limits(p0, n, level, "proportion")
            half = z * np.sqrt(p0 * (1 - p0) / n)
            # skewness and the 0.5/n continuity step vanish as n grows
            tolerance = (0.02 if n < 500000 else 0.005) * half
            assert lower[0] == pytest.approx(p0 - half, abs=tolerance)
            assert upper[0] == pytest.approx(p0 + half, abs=tolerance)


def test_exact_limits_for_small_n_are_the_interpolated_binomial_quantiles():
    n, p0 = 20, 0.1
    # lower, p = 0.025: r = smallest x with F(x) >= 0.025 = 0 (F(0) = 0.9^20 = 0.12158)
    f0 = 0.9**20
    assert stats.binom.ppf(0.025, n, p0) == 0
    alpha = (f0 - 0.025) / f0
    want_lower = max((0 - alpha) / n, 0.0)
    # upper, p = 0.975: r = 5 (F(4) = 0.95683 < 0.975 <= F(5) = 0.98875)
    f4, f5 = stats.binom.cdf(4, n, p0), stats.binom.cdf(5, n, p0)
    assert f4 < 0.975 <= f5
    alpha = (f5 - 0.975) / (f5 - f4)
    want_upper = (5 + 1 - alpha) / n
    lower, upper = exact_limits(p0, n, 0.95, "proportion")
    assert lower[0] == want_lower == 0.0
    assert upper[0] == pytest.approx(want_upper, rel=1e-12)

    # n = 200, lower limit positive: interpolate between r - 1 and r
    n = 200
    r = stats.binom.ppf(0.001, n, p0)
    fr, fr1 = stats.binom.cdf(r, n, p0), stats.binom.cdf(r - 1, n, p0)
    assert fr1 < 0.001 <= fr
    lower, _ = exact_limits(p0, n, 0.998, "proportion")
    assert lower[0] == pytest.approx((r - (fr - 0.001) / (fr - fr1)) / n, rel=1e-12)


def test_exact_ratio_limits_use_poisson_quantiles_of_target_times_expected():
    e = 3.0
    lower, upper = exact_limits(1.0, e, 0.95, "ratio")
    # lower: r = 0 since F(0) = exp(-3) = 0.0498 >= 0.025; (0 - alpha)/E < 0 is floored at 0
    assert lower[0] == 0.0
    f6, f7 = stats.poisson.cdf(6, 3.0), stats.poisson.cdf(7, 3.0)
    assert f6 < 0.975 <= f7
    assert upper[0] == pytest.approx((7 + 1 - (f7 - 0.975) / (f7 - f6)) / e, rel=1e-12)


def test_exact_limits_are_reflection_symmetric_between_events_and_non_events():
    # Deaths at target 0.1 and survivors at target 0.9 must give mirror-image limits.
    n = np.arange(5, 400, 7)
    lo_d, up_d = exact_limits(0.1, n, 0.998, "proportion")
    lo_s, up_s = exact_limits(0.9, n, 0.998, "proportion")
    inside = (lo_d > 0) & (up_d < 1)
    np.testing.assert_allclose(lo_d[inside], 1 - up_s[inside], atol=1e-12)
    np.testing.assert_allclose(up_d[inside], 1 - lo_s[inside], atol=1e-12)


def five_groups():
    # target 0.1, so s = 0.3 / sqrt(n): 0.03, 0.015, 0.01, 0.03, 0.006
    return pd.DataFrame(
        {
            "site": list("ABCDE"),
            "events": [16, 28, 108, 10, 235],
            "cases": [100, 400, 900, 100, 2500],
        }
    )


def test_phi_and_tau_squared_match_a_hand_worked_five_group_example():
    # y = .16, .07, .12, .10, .094 -> z = (y - .1)/s = 2, -2, 2, 0, -1
    # phi = (4 + 4 + 4 + 0 + 1) / 5 = 2.6
    # w = n / 0.09: sum w = 4000/0.09 = 44444.44; sum w^2 = 7,240,000/0.0081
    # sum w^2 / sum w = 7,240,000 / 360 = 20111.11
    # tau2 = (5 * 2.6 - 4) / (44444.44 - 20111.11) = 9 / 24333.33
    phi = 13 / 5
    tau2 = 9 / (4000 / 0.09 - 7_240_000 / 360)
    # 5 groups: floor(0.1 * 5) = 0 trimmed per tail, so no winsorising happens.
    table = funnel_table(five_groups(), "site", "events", "cases", target=0.1, overdispersion="multiplicative")
    np.testing.assert_allclose(table["z"], [2, -2, 2, 0, -1], atol=1e-12)
    assert table.attrs["phi"] == pytest.approx(phi, rel=1e-12)
    assert table.attrs["tau2"] == pytest.approx(tau2, rel=1e-12)
    assert table.attrs["adjusted"] is True
    np.testing.assert_allclose(table["z_adjusted"], np.array([2, -2, 2, 0, -1]) / np.sqrt(phi), atol=1e-12)
    # Multiplicative limits for site C (n = 900, s = 0.01): 0.1 +/- z sqrt(2.6) 0.01
    c = table.set_index("group").loc["C"]
    assert c["upper_998"] == pytest.approx(0.1 + Z_998 * np.sqrt(phi) * 0.01, rel=1e-6)
    assert c["lower_95"] == pytest.approx(0.1 - Z_95 * np.sqrt(phi) * 0.01, rel=1e-6)
    assert c["flag_95"] == "within" and c["flag"] == "within"  # z_adj = 2/1.61 = 1.24

    additive = funnel_table(five_groups(), "site", "events", "cases", target=0.1, overdispersion="additive")
    s = 0.3 / np.sqrt(five_groups()["cases"].to_numpy())
    y = np.array([0.16, 0.07, 0.12, 0.10, 0.094])
    np.testing.assert_allclose(additive["z_adjusted"], (y - 0.1) / np.sqrt(s**2 + tau2), rtol=1e-10)
    e = additive.set_index("group").loc["E"]  # n = 2500, s = 0.006
    assert e["upper_998"] == pytest.approx(0.1 + Z_998 * np.sqrt(0.006**2 + tau2), rel=1e-6)


def test_unadjusted_table_flags_against_exact_limits():
    table = funnel_table(five_groups(), "site", "events", "cases", target=0.1)
    assert table.attrs["adjusted"] is False
    lower, upper = exact_limits(0.1, five_groups()["cases"], 0.95)
    np.testing.assert_allclose(table["lower_95"], lower)
    np.testing.assert_allclose(table["upper_95"], upper)
    value = table["value"].to_numpy()
    expected = np.where(value > upper, "high", np.where(value < lower, "low", "within"))
    assert table["flag_95"].tolist() == expected.tolist()
    # z = +2 is not enough against exact limits (right skew plus the continuity step):
    # C (y = 0.12, n = 900) stays inside its 95% limit, while B (z = -2, short left tail) is low.
    assert table["flag_95"].tolist() == ["within", "low", "within", "within", "within"]
    assert table.attrs["target"] == 0.1


def test_winsorising_and_truncating_trim_the_extreme_z_scores_differently():
    z = np.array([-5.0, -1.0, -0.5, 0.0, 0.2, 0.4, 0.6, 1.0, 1.5, 8.0])
    se = np.array([0.01, 0.02, 0.01, 0.02, 0.01, 0.02, 0.01, 0.02, 0.01, 0.02])
    # 10 groups, 10% per tail: k = 1.
    wins, mask = trim_z(z, "winsorise", 0.1)
    np.testing.assert_array_equal(wins, [-1.0, -1.0, -0.5, 0.0, 0.2, 0.4, 0.6, 1.0, 1.5, 1.5])
    assert mask.all()
    trunc, mask = trim_z(z, "truncate", 0.1)
    np.testing.assert_array_equal(trunc, [-1.0, -0.5, 0.0, 0.2, 0.4, 0.6, 1.0, 1.5])
    assert mask.tolist() == [False] + [True] * 8 + [False]

    w_est = estimate_overdispersion(z, se, trim="winsorise")
    t_est = estimate_overdispersion(z, se, trim="truncate")
    phi_w = (1 + 1 + 0.25 + 0 + 0.04 + 0.16 + 0.36 + 1 + 2.25 + 2.25) / 10  # 0.831
    phi_t = (1 + 0.25 + 0 + 0.04 + 0.16 + 0.36 + 1 + 2.25) / 8  # 0.6325
    assert w_est["phi"] == pytest.approx(phi_w) and w_est["n_used"] == 10
    assert t_est["phi"] == pytest.approx(phi_t) and t_est["n_used"] == 8
    untrimmed = estimate_overdispersion(z, se, trim_fraction=0.0)["phi"]
    assert untrimmed == pytest.approx(np.mean(z**2))  # 9.307: the two outliers dominate
    assert t_est["phi"] < w_est["phi"] < untrimmed


def test_phi_at_most_one_means_no_adjustment():
    rng = np.random.default_rng(2)
    groups = pd.DataFrame({"site": range(30), "cases": rng.integers(200, 400, 30)})
    groups["events"] = np.round(groups["cases"] * 0.1).astype(int)  # far less variation than chance
    plain = funnel_table(groups, "site", "events", "cases")
    adjusted = funnel_table(groups, "site", "events", "cases", overdispersion="additive")
    assert adjusted.attrs["phi"] < 1 and adjusted.attrs["adjusted"] is False
    pd.testing.assert_series_equal(plain["upper_998"], adjusted["upper_998"])
    pd.testing.assert_series_equal(plain["z"], adjusted["z_adjusted"], check_names=False)


def test_adjusted_limits_are_never_narrower_than_exact_limits():
    n = np.array([3, 10, 25, 60, 200, 1000, 5000])
    for mode, kwargs in (("multiplicative", {"phi": 1.05}), ("additive", {"tau2": 1e-6})):
        lo, up = control_limits(0.05, n, 0.998, overdispersion=mode, **kwargs)
        lo0, up0 = exact_limits(0.05, n, 0.998)
        assert np.all(lo <= lo0) and np.all(up >= up0)


def test_share_flagged_at_99_8_percent_is_near_0_2_percent_under_the_null():
    rng = np.random.default_rng(20240601)
    n = rng.integers(50, 1500, 100)
    flagged = flagged_od = 0
    reps = 200
    for _ in range(reps):
        groups = pd.DataFrame({"site": range(100), "cases": n, "events": rng.binomial(n, 0.08)})
        flagged += (funnel_table(groups, "site", "events", "cases")["flag"] != "within").sum()
        od = funnel_table(groups, "site", "events", "cases", overdispersion="multiplicative")
        flagged_od += (od["flag"] != "within").sum()
    share = flagged / (reps * 100)
    # Exact limits keep each tail at or below 0.1%: at the true rate the expected share is a
    # little under 0.2% (discreteness); the simulation estimates the target, adding noise.
    lower, upper = exact_limits(0.08, n, 0.998)
    exact_share = np.mean(stats.binom.cdf(np.ceil(lower * n) - 1, n, 0.08) + stats.binom.sf(np.floor(upper * n), n, 0.08))
    assert 0.001 < exact_share <= 0.002
    assert 0.0008 <= share <= 0.0030
    assert flagged_od <= flagged  # adjustment only ever widens


def test_overdispersed_data_flag_fewer_sites_after_adjustment():
    rng = np.random.default_rng(4)
    n = rng.integers(300, 3000, 120)
    true_rate = 1 / (1 + np.exp(-rng.normal(np.log(0.08 / 0.92), 0.3, 120)))
    groups = pd.DataFrame({"site": range(120), "cases": n, "events": rng.binomial(n, true_rate)})
    plain = funnel_table(groups, "site", "events", "cases")
    for mode in ("multiplicative", "additive"):
        adjusted = funnel_table(groups, "site", "events", "cases", overdispersion=mode)
        assert adjusted.attrs["phi"] > 1.5 and adjusted.attrs["adjusted"]
        assert (adjusted["flag"] != "within").sum() < (plain["flag"] != "within").sum()
        assert set(adjusted.index[adjusted["flag"] != "within"]) <= set(plain.index[plain["flag"] != "within"])
    # tau^2 estimates the between-site variance of the true rates (about (0.08*0.92*0.3)^2 = 4.9e-4)
    tau2 = funnel_table(groups, "site", "events", "cases", overdispersion="additive").attrs["tau2"]
    assert 2e-4 < tau2 < 1e-3


def test_funnel_curve_matches_the_table_limits_at_the_groups_denominators():
    table = funnel_table(five_groups(), "site", "events", "cases", target=0.1, overdispersion="multiplicative")
    curve = funnel_curve(
        five_groups()["cases"], target=0.1, overdispersion="multiplicative", phi=table.attrs["phi"]
    ).set_index("denominator")
    for _, row in table.iterrows():
        assert curve.loc[row["cases"], "upper_998"] == pytest.approx(row["upper_998"])
        assert curve.loc[row["cases"], "lower_95"] == pytest.approx(row["lower_95"])
    drawn = funnel_curve_for(table, n_points=50)
    assert drawn["denominator"].min() == 100 and drawn["denominator"].max() == 2500
    assert (drawn["upper_998"] >= drawn["upper_95"]).all()


def test_ratio_indicator_uses_target_one_and_poisson_standard_error():
    groups = pd.DataFrame({"site": ["A", "B"], "observed": [12, 3], "expected": [8.0, 4.5]})
    table = funnel_table(groups, "site", "observed", "expected", indicator="ratio")
    assert table.attrs["target"] == 1.0
    np.testing.assert_allclose(table["value"], [1.5, 3 / 4.5])
    np.testing.assert_allclose(table["se"], [1 / np.sqrt(8.0), 1 / np.sqrt(4.5)])
    np.testing.assert_allclose(table["z"], [(1.5 - 1) * np.sqrt(8.0), (3 / 4.5 - 1) * np.sqrt(4.5)])


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 5000), p0=st.floats(0.01, 0.99))
def test_exact_funnel_limits_bracket_the_target_and_nest_by_level(n, p0):
    lo95, up95 = exact_limits(p0, n, 0.95)
    lo998, up998 = exact_limits(p0, n, 0.998)
    assert 0 <= lo998[0] <= lo95[0] <= p0 <= up95[0] <= up998[0] <= 1
