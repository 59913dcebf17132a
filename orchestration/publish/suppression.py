"""Small-cell suppression for every table that leaves the coordinating centre.

The rule is the one the site reports display (orchestration/reports/display.py),
applied to whole tables: a count (cases, observed events, or non-events =
cases - observed) from 1 to the threshold is replaced by ``<=t``, and every
number that would give it back is replaced by ``suppressed``:

* cases in 1..t: cases and observed, and everything derived from them
  (expected, O/E and intervals, rates, reliability-adjusted and shrunken
  estimates, change);
* observed or non-events in 1..t: observed, O/E and intervals, observed,
  risk-standardised and reliability-adjusted rates, shrunken O/E, change;
* the change from the previous period only when both periods are shown in
  full (otherwise subtraction gives back a suppressed O/E).

No totals over sites or periods are published, so no suppressed cell can be
recovered by subtracting the others from a total.
"""

from __future__ import annotations

import pandas as pd

SUPPRESSED = "suppressed"

FROM_CASES = ["expected", "expected_rate", "funnel_lower_95", "funnel_upper_95", "funnel_lower_998",
              "funnel_upper_998", "reliability"]
FROM_OBSERVED = ["oe", "oe_lower_95", "oe_upper_95", "oe_lower_998", "oe_upper_998", "observed_rate",
                 "risk_standardised_rate", "reliability_adjusted_rate", "shrunken_oe", "shrunken_oe_lower_95",
                 "shrunken_oe_upper_95", "oe_change"]


def _small(values: pd.Series, threshold: int) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.notna() & (numbers >= 1) & (numbers <= threshold)


def suppress_results(results: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """A copy of a site-results table with small cells and what gives them back suppressed."""
    out = results.copy()
    cases = pd.to_numeric(out["cases"], errors="coerce")
    observed = pd.to_numeric(out["observed"], errors="coerce")
    small_cases = _small(cases, threshold)
    small_events = _small(observed, threshold) | _small(cases - observed, threshold)
    hidden = small_cases | small_events
    if "oe_change" in out:
        order = out.sort_values(["site_id", "measure_id", "period"]).index
        previous_hidden = hidden.loc[order].groupby(
            [out.loc[order, "site_id"], out.loc[order, "measure_id"]]).shift(1, fill_value=False)
        hide_change = hidden | previous_hidden.reindex(out.index).astype(bool)
    label = f"<={threshold}"
    for column in out.columns:
        if column in ("cases", "observed") or column in FROM_CASES + FROM_OBSERVED:
            out[column] = out[column].astype(object)
    out.loc[small_cases, "cases"] = label
    out.loc[small_cases | _small(observed, threshold), "observed"] = label
    out.loc[~small_cases & _small(cases - observed, threshold) & ~_small(observed, threshold),
            "observed"] = SUPPRESSED
    for column in FROM_CASES:
        if column in out:
            out.loc[small_cases, column] = SUPPRESSED
    for column in FROM_OBSERVED:
        if column in out:
            out.loc[hidden, column] = SUPPRESSED
    if "oe_change" in out:
        out.loc[hide_change, "oe_change"] = SUPPRESSED
    return out

