"""How good is a risk model: discrimination, calibration, overall accuracy.

A site's O/E is only as fair as the model's E. These are the measures NSQIP
and the STS publish for their models (Steyerberg, Clinical Prediction
Models, 2nd ed., 2019, ch. 15; Steyerberg et al., Epidemiology
2010;21:128). All take 0/1 outcomes ``y`` and predicted probabilities ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logit

from .logistic import fit_logistic

_EPS = 1e-12


def _check(y, p) -> tuple[np.ndarray, np.ndarray]:
    yv = np.asarray(y, dtype=float).ravel()
    pv = np.asarray(p, dtype=float).ravel()
    if yv.shape != pv.shape:
        raise ValueError("y and p must have the same length")
    if np.any(np.isnan(yv)) or np.any(np.isnan(pv)):
        raise ValueError("y and p must not contain missing values")
    if not np.all(np.isin(yv, (0.0, 1.0))):
        raise ValueError("y must be 0/1")
    if np.any((pv < 0) | (pv > 1)):
        raise ValueError("p must lie in [0, 1]")
    return yv, pv


def c_statistic(y, p) -> float:
    """Concordance (area under the ROC curve) by the Mann-Whitney statistic.

    c = (R1 - n1 (n1 + 1) / 2) / (n1 n0), where R1 is the sum of the
    mid-ranks of the events' predictions among all predictions. Equals the
    share of (event, non-event) pairs in which the event has the higher
    prediction, a tie counting one half (Hanley & McNeil, Radiology
    1982;143:29). NaN when all cases are events or none are.
    """
    yv, pv = _check(y, p)
    n1 = yv.sum()
    n0 = yv.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(pv)  # mid-ranks for ties
    return float((ranks[yv == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def calibration_intercept(y, p) -> float:
    """Calibration-in-the-large: a in logit P(y=1) = a + offset(logit p).

    0 when the predictions are right on average; > 0 when events are more
    frequent than predicted. Fitted by maximum likelihood with the slope
    fixed at 1 (Cox D.R., Biometrika 1958;45:562; Steyerberg 2019, sec. 15.2).
    Predictions are clipped to [1e-12, 1 - 1e-12] before the logit.
    """
    yv, pv = _check(y, p)
    lp = logit(np.clip(pv, _EPS, 1 - _EPS))
    fit = fit_logistic(pd.DataFrame({"intercept": np.ones_like(yv)}), yv, offset=lp, intercept=False)
    return float(fit.coefficients["intercept"])


def calibration_slope(y, p) -> float:
    """Calibration slope: b in logit P(y=1) = a + b logit p.

    1 for a well-calibrated model; < 1 when predictions are too extreme
    (overfitting), > 1 when too timid (Cox 1958; Steyerberg 2019, sec. 15.2).
    """
    yv, pv = _check(y, p)
    lp = logit(np.clip(pv, _EPS, 1 - _EPS))
    fit = fit_logistic(pd.DataFrame({"logit_p": lp}), yv, intercept=True)
    return float(fit.coefficients["logit_p"])


@dataclass(frozen=True)
class HosmerLemeshow:
    """Hosmer-Lemeshow result: statistic, degrees of freedom, p-value and the group table."""

    statistic: float
    df: int
    p_value: float
    table: pd.DataFrame


def hosmer_lemeshow(y, p, groups: int = 10) -> HosmerLemeshow:
    """Hosmer-Lemeshow goodness-of-fit test over groups of predicted risk.

    Groups: cut points at the 0, 1/g, ..., 1 quantiles of p (``numpy``'s
    default linear interpolation); a case falls in group k when
    q_(k-1) < p <= q_k (the lowest group includes its lower end), so tied
    predictions always share a group, as in R's ``ResourceSelection::hoslem.test``.
    Duplicate cut points are dropped, so heavily tied predictions give fewer
    groups.

    Statistic over the non-empty groups g::

        C = sum_g (O_g - E_g)^2 / (E_g (1 - E_g / n_g)),   E_g = sum of p in g

    compared with chi-square on (number of groups - 2) degrees of freedom
    (Hosmer & Lemeshow, Applied Logistic Regression, 3rd ed., 2013, sec. 5.2.2).
    """
    yv, pv = _check(y, p)
    cuts = np.unique(np.quantile(pv, np.linspace(0, 1, groups + 1)))
    interior = cuts[1:-1]
    group = np.searchsorted(interior, pv, side="left")
    frame = pd.DataFrame({"group": group, "y": yv, "p": pv})
    table = (
        frame.groupby("group", sort=True)
        .agg(n=("y", "size"), observed=("y", "sum"), expected=("p", "sum"), p_min=("p", "min"), p_max=("p", "max"))
        .reset_index()
    )
    e = table["expected"].to_numpy()
    o = table["observed"].to_numpy()
    n = table["n"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (o - e) ** 2 / (e * (1 - e / n))
    table["contribution"] = terms
    statistic = float(np.nansum(terms))
    dof = int(len(table) - 2)
    p_value = float(stats.chi2.sf(statistic, dof)) if dof > 0 else float("nan")
    return HosmerLemeshow(statistic, dof, p_value, table)


def brier_score(y, p) -> float:
    """Brier score: mean of (p - y)^2 (Brier G.W., Mon Weather Rev 1950;78:1). Lower is better."""
    yv, pv = _check(y, p)
    return float(np.mean((pv - yv) ** 2))


def model_quality(y, p, *, hl_groups: int = 10) -> dict:
    """All model-quality measures for one model, as a flat dict.

    Keys: ``n``, ``events``, ``observed_rate``, ``mean_predicted``,
    ``c_statistic``, ``calibration_intercept``, ``calibration_slope``,
    ``hosmer_lemeshow_chi2``, ``hosmer_lemeshow_df``, ``hosmer_lemeshow_p``,
    ``brier``. See each function for the formula.
    """
    yv, pv = _check(y, p)
    hl = hosmer_lemeshow(yv, pv, groups=hl_groups)
    return {
        "n": int(yv.size),
        "events": int(yv.sum()),
        "observed_rate": float(yv.mean()),
        "mean_predicted": float(pv.mean()),
        "c_statistic": c_statistic(yv, pv),
        "calibration_intercept": calibration_intercept(yv, pv),
        "calibration_slope": calibration_slope(yv, pv),
        "hosmer_lemeshow_chi2": hl.statistic,
        "hosmer_lemeshow_df": hl.df,
        "hosmer_lemeshow_p": hl.p_value,
        "brier": brier_score(yv, pv),
    }
