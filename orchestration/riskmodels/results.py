"""Site results per measure and period: O/E, intervals, reliability, funnel, status.

Pure functions of two frames, usable by analysts directly: ``site_results``
(used by the dbt Python model ``mart_site_results``) and ``funnel_curves``,
the same funnel curves without the rest of the results (used by
``mart_funnel_limits``, so that model does not pay for the shrinkage).

Decisions (README "Site results"):

* **O/E** with exact Poisson intervals at every policy level (95%, 99.8%).
* **Risk-standardised rate** = O/E x the collaborative's observed rate of the
  measure in the period (included sites).
* **Reliability adjustment**: empirical-Bayes shrinkage from a random-intercept
  logistic model fitted to the included sites of the period
  (``stats.reliability_table``, passing each site's sum of p(1-p) so that
  within-site case-mix variation is not mistaken for noise).
* **Funnel limits** for O/E against expected counts, overdispersion-adjusted
  by the policy's method (default additive tau-squared with 10% winsorised
  z-scores); a site is only ever flagged outside the adjusted limits.
* **Outlier status**: ``not_included`` (data-quality red), ``insufficient_cases``
  (fewer than policy.min_cases cases: reported, not ranked), else ``high`` or
  ``low`` outside the adjusted 99.8% funnel limits, else ``as_expected``.
* **Percentile rank** (0 best, 100 worst for lower-is-better measures) of the
  shrunken O/E among ranked sites.
* **Positive deviant**: ``stats.positive_deviants`` over the periods
  (shrunken O/E upper 95% limit below 1, reliability >= 0.4, two consecutive
  periods).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import funnel_curve_for, funnel_table, level_label, oe_table, positive_deviants, reliability_table

RESULT_COLUMNS = [
    "site_id", "blinded_code", "period", "measure_id", "measure_label", "direction", "quality_status",
    "is_included", "cases", "observed", "expected", "oe", "oe_lower_95", "oe_upper_95", "oe_lower_998",
    "oe_upper_998", "observed_rate", "expected_rate", "overall_rate", "risk_standardised_rate", "reliability",
    "reliability_adjusted_rate", "shrunken_oe", "shrunken_oe_lower_95", "shrunken_oe_upper_95",
    "funnel_lower_95", "funnel_upper_95", "funnel_lower_998", "funnel_upper_998", "funnel_phi",
    "funnel_tau2", "percentile_rank", "outlier_status", "is_positive_deviant", "oe_change",
]


INPUT_COLUMNS = ["site_id", "blinded_code", "period", "measure_id", "quality_status", "is_included", "cases",
                 "observed", "expected", "variance"]


def _prepared(site_periods: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    """The input's columns the results read, joined to the measures and sorted, as both entry points group it.

    Other columns of the input (a fingerprint, say) are left out, so that a
    group's rows, and so its key in ``stored_groups``, are what it is computed from.

    Shared so that :func:`funnel_curves` sees each group's rows in the same
    order as :func:`site_results`: the funnel's sums and trimming depend on
    row order in the last bit.
    """
    frame = site_periods[INPUT_COLUMNS].merge(measures.rename(columns={"label": "measure_label"}), on="measure_id",
                                              how="left")
    return frame.sort_values(["measure_id", "period", "site_id"]).reset_index(drop=True)


def _included(group: pd.DataFrame) -> pd.DataFrame:
    """The rows of one (measure, period) group that the statistics use: included sites with cases.

    Red (not included) sites and sites without cases get no O/E, no
    shrinkage and no funnel position, and they do not move the funnel's
    target, overdispersion or curve range.
    """
    return group[group["is_included"] & (group["cases"] > 0)]


def _funnel(ok: pd.DataFrame, policy) -> pd.DataFrame:
    """Funnel table of O/E against expected for a group's included rows, by the policy's method.

    The one place the funnel is computed, so the site flags in
    :func:`site_results` and the curves drawn from :func:`funnel_curves`
    always use the same limits and overdispersion adjustment.
    """
    return funnel_table(ok.reset_index(), "site_id", "observed", "expected", indicator="ratio",
                        levels=policy.interval_levels, overdispersion=policy.funnel_overdispersion,
                        trim=policy.funnel_trim, trim_fraction=policy.funnel_trim_fraction)


def _curve(group: pd.DataFrame, funnel: pd.DataFrame) -> pd.DataFrame:
    """The funnel curve of one group, labelled with its period and measure, x axis named ``expected``."""
    curve = funnel_curve_for(funnel)
    curve.insert(0, "measure_id", group["measure_id"].iloc[0])
    curve.insert(0, "period", group["period"].iloc[0])
    return curve.rename(columns={"denominator": "expected"})


def _curves_frame(curves: list[pd.DataFrame]) -> pd.DataFrame:
    """The groups' curves stacked; an empty frame with the key columns when no group had included sites."""
    return pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
        columns=["period", "measure_id", "expected", "target"])


def _one_group(group: pd.DataFrame, policy, fits=None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    out = group.copy()
    ok = _included(out)
    for column in RESULT_COLUMNS:
        if column not in out:
            out[column] = pd.Series(None, index=out.index, dtype=object) if column == "outlier_status" \
                else np.nan
    if ok.empty:
        return out, None
    oe = oe_table(ok["observed"].to_numpy(), ok["expected"].to_numpy(), levels=policy.interval_levels)
    oe.index = ok.index
    for column in oe.columns:
        out.loc[ok.index, column] = oe[column]
    overall = ok["observed"].sum() / ok["cases"].sum()
    out.loc[ok.index, "observed_rate"] = ok["observed"] / ok["cases"]
    out.loc[ok.index, "expected_rate"] = ok["expected"] / ok["cases"]
    out.loc[ok.index, "overall_rate"] = overall
    out.loc[ok.index, "risk_standardised_rate"] = out.loc[ok.index, "oe"] * overall

    shrunk = reliability_table(ok.reset_index(), "site_id", "observed", "expected", "cases", variance="variance",
                               fits=fits)
    shrunk.index = ok.index
    for column in ("reliability", "reliability_adjusted_rate", "shrunken_oe", "shrunken_oe_lower_95",
                   "shrunken_oe_upper_95"):
        out.loc[ok.index, column] = shrunk[column]

    funnel = _funnel(ok, policy)
    funnel.index = ok.index
    for level in policy.interval_levels:
        label = level_label(level)
        out.loc[ok.index, f"funnel_lower_{label}"] = funnel[f"lower_{label}"]
        out.loc[ok.index, f"funnel_upper_{label}"] = funnel[f"upper_{label}"]
    out.loc[ok.index, "funnel_phi"] = funnel.attrs["phi"]
    out.loc[ok.index, "funnel_tau2"] = funnel.attrs["tau2"]

    ranked = ok.index[ok["cases"] >= policy.min_cases]
    status = pd.Series("as_expected", index=ok.index, dtype=object)
    status[funnel["flag"] == "high"] = "high"
    status[funnel["flag"] == "low"] = "low"
    status[ok["cases"] < policy.min_cases] = "insufficient_cases"
    out.loc[ok.index, "outlier_status"] = status
    if len(ranked):
        ascending = out.loc[ranked, "direction"].iloc[0] != "higher_is_better"
        shrunken = out.loc[ranked, "shrunken_oe"].astype(float)
        order = shrunken.rank(method="average", ascending=ascending)
        out.loc[ranked, "percentile_rank"] = 100 * (order - 1) / max(len(ranked) - 1, 1)
    return out, _curve(group, funnel)


GROUPS = ["measure_id", "period"]


def _group_keys(frame: pd.DataFrame, policy, groups) -> dict[tuple, str]:
    """Each (measure, period) group's key in ``groups`` (none without a store)."""
    if groups is None:
        return {}
    from .stored_groups import group_keys

    return group_keys(frame, GROUPS, policy)


def _stored_or_computed(group: pd.DataFrame, policy, fits, groups,
                        key: str | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``_one_group``, or its results from ``groups`` (``stored_groups.StoredGroups``) when its rows are unchanged."""
    if groups is None:
        return _one_group(group, policy, fits)
    stored = groups.get(key)
    if stored is None:
        stored = _one_group(group, policy, fits)
        groups.put(key, *stored)
    return stored


def site_results(site_periods: pd.DataFrame, measures: pd.DataFrame, policy,
                 fits=None, groups=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results per site, period and measure, and the funnel curves per period and measure.

    ``site_periods``: site_id, blinded_code, period, measure_id, quality_status,
    is_included, cases, observed, expected, variance (sum of p(1-p)).
    ``measures``: measure_id, label, direction. ``policy``: the registry policy.
    ``fits``: random-intercept fits already made (``stats.reliability_table``;
    ``stored_fits.StoredFits`` keeps them between builds). ``groups``: the
    results of (measure, period) groups already computed, by their rows
    (``stored_groups.StoredGroups``); a new group's are added to it.
    """
    frame = _prepared(site_periods, measures)
    keys = _group_keys(frame, policy, groups)
    parts, curves = [], []
    for values, group in frame.groupby(GROUPS, sort=True):
        result, curve = _stored_or_computed(group, policy, fits, groups, keys.get(values))
        parts.append(result)
        if curve is not None:
            curves.append(curve)
    results = pd.concat(parts, ignore_index=True)
    results.loc[~results["is_included"], ["cases", "observed", "expected"]] = np.nan
    results.loc[~results["is_included"], "outlier_status"] = "not_included"
    results["is_positive_deviant"] = False
    periods = sorted(results["period"].unique())
    for measure_id, rows in results.groupby("measure_id"):
        ranked = rows[rows["outlier_status"].isin(["high", "low", "as_expected"])]
        if ranked.empty:
            continue
        flags = positive_deviants(ranked, site="site_id", period="period", periods=periods,
                                  direction=ranked["direction"].iloc[0],
                                  min_reliability=policy.reliability_acceptable)
        deviant = flags.set_index(["site_id", "period"])["positive_deviant"]
        keys = list(zip(rows["site_id"], rows["period"]))
        results.loc[rows.index, "is_positive_deviant"] = [bool(deviant.get(k, False)) for k in keys]
    results = results.sort_values(["site_id", "measure_id", "period"])
    results["oe_change"] = results.groupby(["site_id", "measure_id"])["oe"].diff()
    results["is_positive_deviant"] = results["is_positive_deviant"].astype(bool)
    return results[RESULT_COLUMNS].reset_index(drop=True), _curves_frame(curves)


def funnel_curves(site_periods: pd.DataFrame, measures: pd.DataFrame, policy, groups=None) -> pd.DataFrame:
    """The funnel curves per period and measure: exactly ``site_results(...)[1]``, computed alone.

    The curves depend only on each group's included rows and the funnel
    fitted to them, so this skips what :func:`site_results` also computes
    (exact O/E intervals, the random-intercept reliability shrinkage, the
    ranks and positive deviance), which dominates its time; the dbt model
    ``mart_funnel_limits`` needs only the curves. The same grouping and
    helpers give the same frame to the last bit (tests/unit/test_site_results.py).
    ``groups`` (``stored_groups.StoredGroups``, read only): a group whose
    rows ``site_results`` has seen gives its stored curve.
    """
    frame = _prepared(site_periods, measures)
    keys = _group_keys(frame, policy, groups)
    curves = []
    for values, group in frame.groupby(GROUPS, sort=True):
        stored = groups.get(keys[values]) if groups is not None else None
        if stored is not None:
            curve = stored[1]
        else:
            ok = _included(group)
            curve = None if ok.empty else _curve(group, _funnel(ok, policy))
        if curve is not None:
            curves.append(curve)
    return _curves_frame(curves)
