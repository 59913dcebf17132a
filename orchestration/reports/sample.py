"""Synthetic report inputs, in the shape of the marts (see the module docs of :mod:`.site_report`).

For tests, the benchmark and previewing the look of a report without running
the pipeline. The statistics are deliberately simple approximations (normal
funnel limits, a fixed between-site variance): they make plausible pictures,
not results; the pipeline's numbers come from ``orchestration.stats``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from scipy import stats

MEASURES = pd.DataFrame({
    "measure_id": ["mortality_30d", "morbidity_30d", "ssi_30d", "readmission_30d"],
    "label": ["30-day mortality", "Any morbidity within 30 days", "Surgical site infection within 30 days",
              "Unplanned readmission within 30 days"],
    "direction": ["lower_is_better"] * 4,
})
BASE_RATES = {"mortality_30d": 0.03, "morbidity_30d": 0.16, "ssi_30d": 0.05, "readmission_30d": 0.08}
TAU2 = 0.04          # between-site variance of log O/E used for shrinkage and funnel widening
Z95, Z998 = 1.959964, 3.090232


def quarters(first_year: int, count: int) -> list[str]:
    return [f"{first_year + i // 4}Q{i % 4 + 1}" for i in range(count)]


def blinded(site_id: str) -> str:
    return "P-" + hashlib.sha256(("sample:" + site_id).encode()).hexdigest()[:6].upper()


def _exact(observed, expected, level):
    a = 1 - level
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(o > 0, stats.chi2.ppf(a / 2, 2 * o) / (2 * e), 0.0)
        upper = stats.chi2.ppf(1 - a / 2, 2 * (o + 1)) / (2 * e)
    return lower, upper


def funnel_limits(expected, z):
    e = np.asarray(expected, dtype=float)
    half = z * np.sqrt(1 / e + TAU2)
    return np.maximum(0.0, 1 - half), 1 + half


def sample_results(site_ids: list[str], periods: list[str], measures: pd.DataFrame = MEASURES, *,
                   cases_per_period: float = 190.0, red_share: float = 0.04, seed: int = 7,
                   min_cases: int = 25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``results`` and ``funnel_curves`` for the given sites, periods and measures."""
    rng = np.random.default_rng(seed)
    n_sites = len(site_ids)
    size = np.exp(rng.normal(0, 0.7, n_sites))
    frames = []
    for mid in measures["measure_id"]:
        rate = BASE_RATES.get(mid, 0.08)
        effect = np.exp(rng.normal(0, 0.25, n_sites))
        mix = np.exp(rng.normal(0, 0.15, n_sites))
        for period in periods:
            cases = rng.poisson(cases_per_period * size).astype(float)
            expected = cases * rate * mix
            observed = rng.poisson(expected * effect).astype(float)
            frames.append(pd.DataFrame({"site_id": site_ids, "period": period, "measure_id": mid,
                                        "cases": cases, "observed": observed, "expected": expected}))
    r = pd.concat(frames, ignore_index=True)
    r = r.merge(measures.rename(columns={"label": "measure_label"}), on="measure_id")
    r["blinded_code"] = r["site_id"].map(blinded)
    red = pd.Series(rng.random(n_sites * len(periods)) < red_share,
                    index=pd.MultiIndex.from_product([site_ids, periods]))
    r["quality_status"] = np.where([red[(s, p)] for s, p in zip(r["site_id"], r["period"])], "red", "green")
    r["is_included"] = r["quality_status"] != "red"
    return complete_results(r, min_cases=min_cases)


def complete_results(r: pd.DataFrame, *, min_cases: int = 25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Derive every result column from site_id, blinded_code, period, measure_id, cases, observed, expected,
    is_included (and labels); returns results and funnel curves."""
    r = r.copy()
    r.loc[r["expected"] <= 0, "expected"] = np.nan
    r["oe"] = r["observed"] / r["expected"]
    for level, label in ((0.95, "95"), (0.998, "998")):
        lo, hi = _exact(r["observed"], r["expected"], level)
        r[f"oe_lower_{label}"], r[f"oe_upper_{label}"] = lo, hi
    r["observed_rate"] = r["observed"] / r["cases"]
    r["expected_rate"] = r["expected"] / r["cases"]
    inc = r["is_included"].astype(bool)
    totals = r[inc].groupby(["period", "measure_id"])[["observed", "cases"]].sum()
    overall = (totals["observed"] / totals["cases"]).rename("overall_rate")
    r = r.drop(columns=["overall_rate"], errors="ignore").join(overall, on=["period", "measure_id"])
    r["risk_standardised_rate"] = r["oe"] * r["overall_rate"]
    rel = TAU2 / (TAU2 + 1 / r["expected"])
    r["reliability"] = rel
    r["shrunken_oe"] = np.exp(rel * np.log(r["oe"].clip(lower=0.05)))
    half = Z95 * np.sqrt(rel / r["expected"].clip(lower=0.1))
    r["shrunken_oe_lower_95"] = r["shrunken_oe"] * np.exp(-half)
    r["shrunken_oe_upper_95"] = r["shrunken_oe"] * np.exp(half)
    r["reliability_adjusted_rate"] = r["shrunken_oe"] * r["overall_rate"]
    for z, label in ((Z95, "95"), (Z998, "998")):
        lo, hi = funnel_limits(r["expected"], z)
        r[f"funnel_lower_{label}"], r[f"funnel_upper_{label}"] = lo, hi
    status = np.where(r["oe"] > r["funnel_upper_998"], "high",
                      np.where(r["oe"] < r["funnel_lower_998"], "low", "as_expected")).astype(object)
    status[(r["cases"] < min_cases).to_numpy()] = "insufficient_cases"
    status[~inc.to_numpy()] = "not_included"
    r["outlier_status"] = status
    ranked = r["outlier_status"].isin(["high", "low", "as_expected"])
    r["percentile_rank"] = np.nan
    for _, g in r[ranked].groupby(["period", "measure_id"]):
        order = g["shrunken_oe"].rank(method="average")
        r.loc[g.index, "percentile_rank"] = 100 * (order - 1) / max(len(g) - 1, 1)
    better = ranked & (r["shrunken_oe_upper_95"] < 1) & (r["reliability"] >= 0.4)
    r["_better"] = better
    r = r.sort_values(["site_id", "measure_id", "period"])
    prev = r.groupby(["site_id", "measure_id"])["_better"].shift(1, fill_value=False)
    r["is_positive_deviant"] = (r["_better"] & prev.astype(bool)).astype(bool)
    r = r.drop(columns="_better")
    numeric = ["cases", "observed", "expected", "oe", "oe_lower_95", "oe_upper_95", "oe_lower_998", "oe_upper_998",
               "observed_rate", "expected_rate", "risk_standardised_rate", "reliability",
               "reliability_adjusted_rate", "shrunken_oe", "shrunken_oe_lower_95", "shrunken_oe_upper_95",
               "funnel_lower_95", "funnel_upper_95", "funnel_lower_998", "funnel_upper_998", "percentile_rank"]
    r.loc[~r["is_included"].astype(bool), numeric] = np.nan
    curves = []
    for (period, mid), g in r[r["is_included"].astype(bool)].groupby(["period", "measure_id"]):
        grid = np.linspace(0.5, max(float(g["expected"].max()) * 1.1, 2.0), 80)
        lo95, hi95 = funnel_limits(grid, Z95)
        lo998, hi998 = funnel_limits(grid, Z998)
        curves.append(pd.DataFrame({"period": period, "measure_id": mid, "expected": grid, "lower_95": lo95,
                                    "upper_95": hi95, "lower_998": lo998, "upper_998": hi998}))
    return r.reset_index(drop=True), pd.concat(curves, ignore_index=True)


def _period_start(period: str) -> pd.Timestamp:
    year, q = period.split("Q")
    return pd.Timestamp(year=int(year), month=3 * (int(q) - 1) + 1, day=1)


def sample_cases(site_id: str, periods: list[str], measures: pd.DataFrame = MEASURES, *, cases: int = 1500,
                 odds: dict[str, float] | None = None, seed: int = 11) -> pd.DataFrame:
    """One site's cases x measures in operation-date order, events drawn from p with optional odds ratios."""
    rng = np.random.default_rng(seed)
    per = np.array_split(np.arange(cases), len(periods))
    dates, case_periods = [], []
    for period, idx in zip(periods, per):
        start = _period_start(period)
        offsets = np.sort(rng.integers(0, 90, len(idx)))
        dates.extend(start + pd.to_timedelta(offsets, unit="D"))
        case_periods.extend([period] * len(idx))
    keys = [f"{site_id}-{i:05d}" for i in range(cases)]
    frames = []
    for mid in measures["measure_id"]:
        rate = BASE_RATES.get(mid, 0.08)
        lp = np.log(rate / (1 - rate)) + rng.normal(0, 0.9, cases)
        p = 1 / (1 + np.exp(-lp))
        o = (odds or {}).get(mid, 1.0)
        pt = o * p / (1 - p + o * p)
        frames.append(pd.DataFrame({"case_key": keys, "period": case_periods, "operation_date": dates,
                                    "measure_id": mid, "is_event": rng.random(cases) < pt,
                                    "expected_probability": p}))
    return pd.concat(frames, ignore_index=True).sort_values(["operation_date", "case_key"], kind="stable") \
        .reset_index(drop=True)


def sample_quality(site_id: str, periods: list[str], results: pd.DataFrame | None = None,
                   seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    status = ["green"] * len(periods)
    if results is not None:
        own = results[results["site_id"] == site_id].drop_duplicates("period").set_index("period")["quality_status"]
        status = [str(own.get(p, "green")) for p in periods]
    blocking = [int(rng.integers(3, 15)) if s == "red" else 0 for s in status]
    return pd.DataFrame({"period": periods, "status": status,
                         "completeness": [0.91 if s == "red" else 0.985 for s in status],
                         "open_queries": [b + int(rng.integers(0, 20)) for b in blocking],
                         "blocking_open": blocking})
