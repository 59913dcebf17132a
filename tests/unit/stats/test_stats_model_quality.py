"""Model quality measures against brute force, hand computation and statsmodels."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit

from orchestration.stats import (
    brier_score,
    c_statistic,
    calibration_intercept,
    calibration_slope,
    hosmer_lemeshow,
    model_quality,
)


def well_calibrated(n=20000, seed=5):
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(-2.5, 1.1, n))
    y = (rng.random(n) < p).astype(float)
    return y, p


def test_c_statistic_equals_brute_force_share_of_concordant_pairs_with_ties_counting_half():
    rng = np.random.default_rng(1)
    p = np.round(rng.random(400), 1)  # heavy ties
    y = (rng.random(400) < p).astype(float)
    events, non_events = p[y == 1], p[y == 0]
    concordant = sum((e > ne) + 0.5 * (e == ne) for e in events for ne in non_events)
    assert c_statistic(y, p) == pytest.approx(concordant / (len(events) * len(non_events)), rel=1e-12)


def test_c_statistic_hand_example():
    # events at 0.8, 0.4; non-events at 0.4, 0.2, 0.1: pairs (0.8 beats all 3) + (0.4: tie, beats 2) = 5.5 of 6.
    assert c_statistic([1, 1, 0, 0, 0], [0.8, 0.4, 0.4, 0.2, 0.1]) == pytest.approx(5.5 / 6)


def test_hosmer_lemeshow_matches_hand_computation_on_four_groups_of_five():
    p = np.arange(1, 21) / 25.0  # 0.04 ... 0.80, distinct: quartile cuts give groups of 5
    y = np.array([0, 0, 0, 0, 1,  0, 0, 1, 0, 0,  1, 0, 1, 1, 0,  1, 1, 1, 0, 1], dtype=float)
    # group 1: p = .04,.08,.12,.16,.20 -> E = 0.60, O = 1
    # group 2: p = .24,.28,.32,.36,.40 -> E = 1.60, O = 1
    # group 3: p = .44,.48,.52,.56,.60 -> E = 2.60, O = 3
    # group 4: p = .64,.68,.72,.76,.80 -> E = 3.60, O = 4
    terms = [
        (1 - 0.6) ** 2 / (0.6 * (1 - 0.6 / 5)),
        (1 - 1.6) ** 2 / (1.6 * (1 - 1.6 / 5)),
        (3 - 2.6) ** 2 / (2.6 * (1 - 2.6 / 5)),
        (4 - 3.6) ** 2 / (3.6 * (1 - 3.6 / 5)),
    ]
    statistic = sum(terms)
    hl = hosmer_lemeshow(y, p, groups=4)
    assert hl.statistic == pytest.approx(statistic, rel=1e-12)
    assert hl.df == 2
    assert hl.p_value == pytest.approx(np.exp(-statistic / 2), rel=1e-12)  # chi2 sf with 2 df
    assert hl.table["n"].tolist() == [5, 5, 5, 5]
    assert hl.table["expected"].tolist() == pytest.approx([0.6, 1.6, 2.6, 3.6])


def test_hosmer_lemeshow_keeps_tied_predictions_in_one_group():
    p = np.r_[np.full(30, 0.1), np.linspace(0.2, 0.9, 70)]
    y = (np.arange(100) % 3 == 0).astype(float)
    hl = hosmer_lemeshow(y, p, groups=10)
    assert hl.table.loc[0, "n"] == 30  # the 30 tied predictions are not split across deciles


def test_calibration_intercept_and_slope_are_zero_and_one_on_well_calibrated_data():
    y, p = well_calibrated()
    assert calibration_intercept(y, p) == pytest.approx(0.0, abs=0.08)
    assert calibration_slope(y, p) == pytest.approx(1.0, abs=0.08)


def test_calibration_intercept_and_slope_match_statsmodels_glm():
    y, p = well_calibrated(n=5000, seed=9)
    lp = logit(p)
    offset_fit = sm.GLM(y, np.ones_like(y), family=sm.families.Binomial(), offset=lp).fit(tol=1e-12)
    slope_fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit(tol=1e-12)
    assert calibration_intercept(y, p) == pytest.approx(offset_fit.params[0], rel=1e-6)
    assert calibration_slope(y, p) == pytest.approx(slope_fit.params[1], rel=1e-6)


def test_overconfident_predictions_give_a_calibration_slope_below_one():
    y, p = well_calibrated()
    too_extreme = expit(2 * logit(p))
    assert calibration_slope(y, too_extreme) == pytest.approx(0.5, abs=0.05)


def test_brier_score_is_mean_squared_error_of_the_probability():
    assert brier_score([1, 0, 1], [0.9, 0.2, 0.4]) == pytest.approx((0.01 + 0.04 + 0.36) / 3)


def test_model_quality_reports_every_measure():
    y, p = well_calibrated(n=3000)
    quality = model_quality(y, p)
    assert set(quality) == {
        "n", "events", "observed_rate", "mean_predicted", "c_statistic", "calibration_intercept",
        "calibration_slope", "hosmer_lemeshow_chi2", "hosmer_lemeshow_df", "hosmer_lemeshow_p", "brier",
    }
    assert quality["n"] == 3000 and quality["hosmer_lemeshow_df"] == 8
    assert 0.7 < quality["c_statistic"] < 0.85
    assert quality["hosmer_lemeshow_p"] > 0.001
