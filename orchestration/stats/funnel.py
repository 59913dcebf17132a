"""Funnel plots: control limits around a target, with overdispersion.

Method: Spiegelhalter D.J., "Funnel plots for comparing institutional
performance", Stat Med 2005;24:1185-1202 (limits, exact small-count limits,
overdispersion), and Spiegelhalter D.J., "Handling over-dispersion of
performance indicators", Qual Saf Health Care 2005;14:347-351 (winsorising).
Truncation as in NHS Digital's SHMI methodology.

Indicator y_i for group i, target theta0, standard error under the target:

* ``proportion``: y = numerator / denominator (events / cases);
  s_i = sqrt(theta0 (1 - theta0) / n_i); default target the pooled
  proportion sum(numerator) / sum(denominator).
* ``ratio``: y = observed / expected (O/E); O ~ Poisson(theta0 E) so
  s_i = sqrt(theta0 / E_i); default target 1.

**Unadjusted limits are exact**: the p-quantiles of Binomial(n, theta0)/n
or Poisson(theta0 E)/E, made continuous in n (or E) by the interpolation of
Spiegelhalter 2005 (Appendix A.1.1): with r the p-quantile
(F(r) >= p > F(r-1)) and alpha = (F(r) - p) / (F(r) - F(r-1)),

    lower limit (p = (1 - level)/2):     (r - alpha) / n
    upper limit (p = 1 - (1 - level)/2): (r + 1 - alpha) / n

The lower limit interpolates the distribution function and the upper limit
the survival function P(X >= x) (as in Spiegelhalter's own published R code,
``qbinom.interp``). This keeps the limits reflection-symmetric (a proportion
of deaths and the proportion of survivors give the same flags) and each
tail's false-alarm rate at or below its nominal (1 - level)/2. Lower limits
are floored at 0 and proportion upper limits capped at 1. For large n the
limits approach theta0 +/- z s (+/- 0.5/n continuity).

**Overdispersion** (the indicator varies more than chance allows). From the
z-scores z_i = (y_i - theta0) / s_i, after trimming (see below):

* multiplicative: phi = mean of z_i^2 over the I groups used;
  limits theta0 +/- z sqrt(phi) s_i; adjusted z = z_i / sqrt(phi).
* additive (random effects, DerSimonian-Laird-like):
  tau^2 = (I phi - (I - 1)) / (sum w - sum w^2 / sum w), w_i = 1 / s_i^2,
  floored at 0; limits theta0 +/- z sqrt(s_i^2 + tau^2);
  adjusted z_D = (y_i - theta0) / sqrt(s_i^2 + tau^2).

Trimming stops the outliers themselves from inflating phi:
``winsorise`` (Spiegelhalter QSHC 2005) sets the k = floor(trim_fraction x I)
lowest z-scores to the (k+1)-th lowest and the k highest to the (k+1)-th
highest, keeping all I groups; ``truncate`` (SHMI) drops those 2k groups and
estimates phi and tau^2 from the remaining I - 2k (their own w).

Decisions:

* **No adjustment unless phi > 1.** Under-dispersion is not used to narrow
  the limits (Spiegelhalter 2005: limits are inflated only when phi exceeds
  1). Optionally (``test_level``) the adjustment also requires the
  chi-square test of overdispersion, I phi ~ chi2(I - 1) under the null, to
  reject at that level. phi, tau^2 and the test p-value are always reported.
* **Adjusted limits never narrow the exact limits.** The overdispersed
  limits use the normal approximation above; for small counts that can fall
  inside the exact unadjusted limits, so each adjusted limit is the outer
  of the two. A widening must not make a small site easier to flag.
* A group is flagged ``high`` / ``low`` only strictly outside a limit; the
  ``flag`` column is the flag at the widest level (99.8% by default), the
  "alarm" level; ``flag_<label>`` columns give each level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .intervals import level_label

Z_95 = 1.959964
Z_998 = 3.090232
INDICATORS = ("proportion", "ratio")
OVERDISPERSION = ("none", "multiplicative", "additive")
TRIMS = ("winsorise", "truncate")


def z_for_level(level: float) -> float:
    """Two-sided normal quantile: 0.95 -> 1.959964, 0.998 -> 3.090232."""
    return float(stats.norm.ppf(1 - (1 - level) / 2))


def _distribution(indicator: str, target: float, denominator: np.ndarray):
    if indicator == "proportion":
        if not 0 < target < 1:
            raise ValueError("a proportion's target must lie strictly between 0 and 1")
        if np.any(np.abs(denominator - np.round(denominator)) > 1e-9):
            raise ValueError("a proportion's denominators must be whole numbers of cases")
        return stats.binom(np.round(denominator).astype(int), target)
    if indicator == "ratio":
        if not target > 0:
            raise ValueError("a ratio's target must be positive")
        return stats.poisson(target * denominator)
    raise ValueError(f"indicator must be one of {INDICATORS}")


def standard_error(target: float, denominator, indicator: str = "proportion") -> np.ndarray:
    """s = sqrt(theta0 (1 - theta0) / n) for a proportion, sqrt(theta0 / E) for an O/E ratio."""
    d = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if indicator == "proportion":
            return np.where(d > 0, np.sqrt(target * (1 - target) / d), np.nan)
        if indicator == "ratio":
            return np.where(d > 0, np.sqrt(target / d), np.nan)
    raise ValueError(f"indicator must be one of {INDICATORS}")


def exact_limits(target: float, denominator, level: float = 0.998, indicator: str = "proportion"):
    """Exact interpolated limits (Spiegelhalter 2005, Appendix) at one level.

    See the module docstring for the formula. Returns ``(lower, upper)``
    arrays on the indicator's scale (proportion or O/E). Denominators <= 0
    give NaN.
    """
    den = np.atleast_1d(np.asarray(denominator, dtype=float))
    out_lo = np.full(den.shape, np.nan)
    out_hi = np.full(den.shape, np.nan)
    ok = den > 0
    if ok.any():
        d = den[ok]
        dist = _distribution(indicator, target, d)
        p_lo = (1 - level) / 2
        p_hi = 1 - p_lo
        r = dist.ppf(p_lo)
        alpha = np.clip((dist.cdf(r) - p_lo) / dist.pmf(r), 0.0, 1.0)
        lower = np.maximum((r - alpha) / d, 0.0)
        r = dist.ppf(p_hi)
        alpha = np.clip((dist.cdf(r) - p_hi) / dist.pmf(r), 0.0, 1.0)
        upper = (r + 1 - alpha) / d
        if indicator == "proportion":
            upper = np.minimum(upper, 1.0)
        out_lo[ok], out_hi[ok] = lower, upper
    return out_lo, out_hi


def control_limits(
    target: float,
    denominator,
    level: float = 0.998,
    *,
    indicator: str = "proportion",
    overdispersion: str = "none",
    phi: float = 1.0,
    tau2: float = 0.0,
):
    """Funnel limits at one level: exact, or widened for overdispersion.

    ``overdispersion="none"``: :func:`exact_limits`. ``"multiplicative"``:
    theta0 +/- z sqrt(phi) s; ``"additive"``: theta0 +/- z sqrt(s^2 + tau^2);
    each adjusted limit is the outer of itself and the exact limit (see the
    module docstring). Pass ``phi = 1`` / ``tau2 = 0`` for no adjustment.
    """
    lower, upper = exact_limits(target, denominator, level, indicator)
    if overdispersion == "none":
        return lower, upper
    s = standard_error(target, np.atleast_1d(np.asarray(denominator, dtype=float)), indicator)
    z = z_for_level(level)
    if overdispersion == "multiplicative":
        half = z * np.sqrt(max(phi, 1.0)) * s
    elif overdispersion == "additive":
        half = z * np.sqrt(s**2 + max(tau2, 0.0))
    else:
        raise ValueError(f"overdispersion must be one of {OVERDISPERSION}")
    adj_lower = np.maximum(target - half, 0.0)
    adj_upper = target + half
    if indicator == "proportion":
        adj_upper = np.minimum(adj_upper, 1.0)
    return np.fmin(lower, adj_lower), np.fmax(upper, adj_upper)


def trim_z(z, trim: str = "winsorise", trim_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Winsorise or truncate z-scores before estimating overdispersion.

    k = floor(trim_fraction x I) per tail. ``winsorise``: values below the
    (k+1)-th smallest are set to it, values above the (k+1)-th largest are
    set to it. ``truncate``: the k smallest and k largest are dropped.
    Returns ``(z_used, mask)`` where ``mask`` marks the groups used (all of
    them when winsorising).
    """
    zv = np.asarray(z, dtype=float)
    if trim not in TRIMS:
        raise ValueError(f"trim must be one of {TRIMS}")
    if not 0 <= trim_fraction < 0.5:
        raise ValueError("trim_fraction must be in [0, 0.5)")
    n = zv.size
    k = int(np.floor(trim_fraction * n + 1e-9))
    mask = np.ones(n, dtype=bool)
    if k == 0:
        return zv.copy(), mask
    order = np.argsort(zv, kind="stable")
    if trim == "winsorise":
        low, high = zv[order[k]], zv[order[n - 1 - k]]
        return np.clip(zv, low, high), mask
    mask[order[:k]] = False
    mask[order[n - k :]] = False
    return zv[mask], mask


def estimate_overdispersion(z, se, *, trim: str = "winsorise", trim_fraction: float = 0.1) -> dict:
    """phi, tau^2 and the chi-square test of overdispersion from z-scores.

    phi = mean(z_used^2) over the I groups used (after :func:`trim_z`);
    tau^2 = max(0, (I phi - (I - 1)) / (sum w - sum w^2 / sum w)), w = 1/se^2
    over the same groups; p-value = P(chi2(I - 1) >= I phi).
    Groups with missing z or se are ignored. Returns a dict with ``phi``,
    ``tau2``, ``n_used`` and ``p_value``.
    """
    zv = np.asarray(z, dtype=float)
    sv = np.asarray(se, dtype=float)
    ok = np.isfinite(zv) & np.isfinite(sv) & (sv > 0)
    zv, sv = zv[ok], sv[ok]
    if zv.size < 2:
        return {"phi": float("nan"), "tau2": float("nan"), "n_used": int(zv.size), "p_value": float("nan")}
    z_used, mask = trim_z(zv, trim, trim_fraction)
    w = 1.0 / sv[mask] ** 2
    i = z_used.size
    phi = float(np.mean(z_used**2))
    denom = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, (i * phi - (i - 1)) / denom) if denom > 0 else 0.0
    p_value = float(stats.chi2.sf(i * phi, i - 1))
    return {"phi": phi, "tau2": float(tau2), "n_used": int(i), "p_value": p_value}


def funnel_table(
    groups_df: pd.DataFrame,
    group: str,
    numerator: str,
    denominator: str,
    *,
    indicator: str = "proportion",
    levels: Sequence[float] = (0.95, 0.998),
    overdispersion: str = "none",
    trim: str = "winsorise",
    trim_fraction: float = 0.1,
    target: float | None = None,
    test_level: float | None = None,
) -> pd.DataFrame:
    """One row per group: value, se, z, funnel limits per level and flags.

    ``numerator``/``denominator`` are events/cases (``indicator="proportion"``)
    or observed/expected (``indicator="ratio"``). ``target`` defaults to the
    pooled proportion, or 1 for a ratio. phi and tau^2 are estimated from
    every group with a positive denominator (after trimming); limits are
    widened only when ``overdispersion`` is not ``"none"`` and phi > 1 (and,
    with ``test_level``, the chi-square test rejects at that level). The
    module docstring gives every formula.

    Columns: ``group``, numerator, denominator (their own names), ``value``,
    ``target``, ``se``, ``z`` (unadjusted), ``z_adjusted``,
    ``lower_<label>``/``upper_<label>`` and ``flag_<label>`` per level
    (label 95, 998), and ``flag`` (the widest level): ``high``, ``low``,
    ``within``, or missing when the denominator is not positive.
    ``.attrs``: ``phi``, ``tau2``, ``n_used``, ``overdispersion_p``,
    ``adjusted``, ``target``, ``indicator``, ``overdispersion``, ``trim``,
    ``trim_fraction``, ``levels``, ``denominator`` (its column name).
    """
    if overdispersion not in OVERDISPERSION:
        raise ValueError(f"overdispersion must be one of {OVERDISPERSION}")
    if indicator not in INDICATORS:
        raise ValueError(f"indicator must be one of {INDICATORS}")
    num = groups_df[numerator].to_numpy(dtype=float)
    den = groups_df[denominator].to_numpy(dtype=float)
    valid = den > 0
    if target is None:
        target = float(num[valid].sum() / den[valid].sum()) if indicator == "proportion" else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(valid, num / den, np.nan)
    se = standard_error(target, den, indicator)
    z = (value - target) / se
    od = estimate_overdispersion(z[valid], se[valid], trim=trim, trim_fraction=trim_fraction)
    phi, tau2 = od["phi"], od["tau2"]
    adjusted = overdispersion != "none" and np.isfinite(phi) and phi > 1.0
    if adjusted and test_level is not None:
        adjusted = od["p_value"] < test_level
    mode = overdispersion if adjusted else "none"
    if mode == "multiplicative":
        z_adj = z / np.sqrt(phi)
    elif mode == "additive":
        z_adj = (value - target) / np.sqrt(se**2 + tau2)
    else:
        z_adj = z.copy()

    out = pd.DataFrame(
        {
            "group": groups_df[group].to_numpy(),
            numerator: num,
            denominator: den,
            "value": value,
            "target": target,
            "se": se,
            "z": z,
            "z_adjusted": z_adj,
        },
        index=groups_df.index,
    )
    widest = None
    for level in sorted(levels):
        label = level_label(level)
        lower, upper = control_limits(
            target, den, level, indicator=indicator, overdispersion=mode, phi=phi, tau2=tau2
        )
        out[f"lower_{label}"] = lower
        out[f"upper_{label}"] = upper
        flag = np.where(value > upper, "high", np.where(value < lower, "low", "within")).astype(object)
        flag[~valid] = None
        out[f"flag_{label}"] = flag
        widest = label
    out["flag"] = out[f"flag_{widest}"]
    out.attrs.update(
        phi=phi,
        tau2=tau2,
        n_used=od["n_used"],
        overdispersion_p=od["p_value"],
        adjusted=bool(adjusted),
        target=target,
        indicator=indicator,
        overdispersion=overdispersion,
        trim=trim,
        trim_fraction=trim_fraction,
        levels=tuple(levels),
        denominator=denominator,
    )
    return out


def funnel_curve(
    denominators,
    *,
    target: float,
    indicator: str = "proportion",
    levels: Sequence[float] = (0.95, 0.998),
    overdispersion: str = "none",
    phi: float = 1.0,
    tau2: float = 0.0,
) -> pd.DataFrame:
    """Control limits along a range of denominators, for drawing the funnel.

    Same limits as :func:`funnel_table` (see :func:`control_limits`). For a
    proportion the denominators are rounded to whole cases and de-duplicated.
    Columns: ``denominator``, ``target``, ``lower_<label>``, ``upper_<label>``.
    """
    den = np.asarray(denominators, dtype=float)
    if indicator == "proportion":
        den = np.unique(np.round(den[den >= 1]))
    else:
        den = np.unique(den[den > 0])
    out = pd.DataFrame({"denominator": den, "target": target})
    for level in sorted(levels):
        label = level_label(level)
        lower, upper = control_limits(
            target, den, level, indicator=indicator, overdispersion=overdispersion, phi=phi, tau2=tau2
        )
        out[f"lower_{label}"] = lower
        out[f"upper_{label}"] = upper
    return out


def funnel_curve_for(table: pd.DataFrame, n_points: int = 200) -> pd.DataFrame:
    """The funnel curve matching a :func:`funnel_table` result (its target, levels, adjustment).

    Denominators run from the smallest to the largest group's denominator
    (n_points, spaced evenly on the log scale).
    """
    attrs = table.attrs
    den = table[attrs["denominator"]].to_numpy(dtype=float)
    den = den[den > 0]
    grid = np.geomspace(max(den.min(), 1e-3 if attrs["indicator"] == "ratio" else 1), den.max(), n_points)
    return funnel_curve(
        grid,
        target=attrs["target"],
        indicator=attrs["indicator"],
        levels=attrs["levels"],
        overdispersion=attrs["overdispersion"] if attrs["adjusted"] else "none",
        phi=attrs["phi"],
        tau2=attrs["tau2"],
    )
