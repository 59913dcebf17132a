"""How numbers are shown in reports that leave the coordinating centre: formats and suppression.

Display rule for small cells (threshold t = policy.small_cell_threshold, 10
by default). A *count* is cases, observed events or non-events (cases minus
observed). Zero is shown: it identifies nobody.

1. **Cases in 1..t**: cases and observed show as "≤t"; every number derived
   from the cell (expected, O/E and its intervals, all rates, the shrunken
   O/E, the change from the previous period) shows as "suppressed", because
   expected / expected rate = cases and O/E x expected = observed.
2. **Observed in 1..t, or non-events (cases - observed) in 1..t**: observed
   shows as "≤t"; cases, expected, expected rate, reliability, percentile and
   outlier status are shown; O/E, its intervals, the observed,
   risk-standardised and reliability-adjusted rates, the shrunken O/E and the
   change from the previous period show as "suppressed" (each of them gives
   back the observed count once cases and expected are known).
3. **Change from the previous period** is shown only when both periods are
   shown in full (otherwise subtraction gives back a suppressed O/E).
4. No totals over sites or periods are printed, so nothing can be recovered
   by subtraction from a published total.
5. **Charts plot positions, never values, for suppressed cells** (by
   default): their points carry no value in tooltips or labels (peers carry
   only their blinded code in any case), and no count is printed on any
   chart. A position can be read off against the axes, though, and on a
   funnel plot O = (O/E) x E, so small counts can be estimated by eye. Where
   that is not acceptable, ``plot_suppressed_cells=False`` leaves every
   suppressed cell (peers' and the site's own) off the funnel and
   caterpillar plots and the site's suppressed periods off its trend chart.
   The case-level CUSUM and VLAD charts show the site's own case sequence,
   as does the list of its own events in its package (the x axis is
   labelled by period, not by case number).

Outlier status, reliability and percentile rank are always shown: they do not
give back a count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SUPPRESSED = "suppressed"
MISSING = "—"

STATUS_TEXT = {
    "high": "Higher than expected",
    "low": "Lower than expected",
    "as_expected": "As expected",
    "insufficient_cases": "Too few cases to rank",
    "not_included": "Data not included",
}
QUALITY_TEXT = {"green": "Green", "yellow": "Yellow", "red": "Red"}


def is_number(value) -> bool:
    try:
        return value is not None and not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def is_small(value, threshold: int) -> bool:
    """A count from 1 to the threshold (a small cell)."""
    return is_number(value) and 1 <= float(value) <= threshold


@dataclass(frozen=True)
class Cell:
    """What may be shown of one site-period-measure result."""

    included: bool
    cases_small: bool
    observed_small: bool

    @property
    def derived_hidden(self) -> bool:
        """O/E, intervals, rates, shrunken O/E and change are hidden."""
        return (not self.included) or self.cases_small or self.observed_small


def cell(row, threshold: int) -> Cell:
    included = bool(row.get("is_included", True)) and is_number(row.get("cases"))
    cases, observed = row.get("cases"), row.get("observed")
    cases_small = is_small(cases, threshold)
    non_events = float(cases) - float(observed) if is_number(cases) and is_number(observed) else None
    observed_small = cases_small or is_small(observed, threshold) or is_small(non_events, threshold)
    return Cell(included=included, cases_small=cases_small, observed_small=observed_small)


def count_text(value, threshold: int) -> str:
    if not is_number(value):
        return MISSING
    if is_small(value, threshold):
        return f"≤{threshold}"
    return f"{int(round(float(value))):,}"


def ratio_text(value) -> str:
    return f"{float(value):.2f}" if is_number(value) else MISSING


def interval_text(lower, upper) -> str:
    if not (is_number(lower) and is_number(upper)):
        return MISSING
    return f"{float(lower):.2f}–{float(upper):.2f}"


def percent_text(value, digits: int = 1) -> str:
    return f"{100 * float(value):.{digits}f}%" if is_number(value) else MISSING


def ordinal(value) -> str:
    if not is_number(value):
        return MISSING
    n = int(round(float(value)))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def change_text(change, direction: str) -> tuple[str, str]:
    """Signed change in O/E and its reading ('better', 'worse', 'same')."""
    if not is_number(change):
        return MISSING, ""
    change = float(change)
    if abs(change) < 0.005:
        return "±0.00", "same"
    lower_better = direction != "higher_is_better"
    better = (change < 0) == lower_better
    sign = "+" if change > 0 else "−"
    return f"{sign}{abs(change):.2f}", "better" if better else "worse"


def result_cells(row, threshold: int, previous=None) -> dict[str, str]:
    """The table cells of one result row under the display rule (module docstring)."""
    c = cell(row, threshold)
    status = str(row.get("outlier_status") or ("as_expected" if c.included else "not_included"))
    out = {"status": status, "status_text": STATUS_TEXT.get(status, status.replace("_", " ")),
           "change_reading": ""}
    if not c.included:
        for key in ("cases", "observed", "expected", "oe", "ci95", "ci998", "observed_rate", "rsr", "rar",
                    "shrunken", "reliability", "percentile", "change"):
            out[key] = MISSING
        return out
    hide = SUPPRESSED
    out["cases"] = count_text(row.get("cases"), threshold)
    observed = row.get("observed")
    if c.observed_small and not c.cases_small and not is_small(observed, threshold) and is_number(observed) \
            and float(observed) > 0:
        out["observed"] = hide          # non-events are the small cell: observed would give them back
    else:
        out["observed"] = count_text(observed, threshold)
    if c.cases_small:
        out["expected"] = hide
    else:
        out["expected"] = f"{float(row['expected']):.1f}" if is_number(row.get("expected")) else MISSING
    if c.derived_hidden:
        for key in ("oe", "ci95", "ci998", "observed_rate", "rsr", "rar", "shrunken", "change"):
            out[key] = hide
    else:
        out["oe"] = ratio_text(row.get("oe"))
        out["ci95"] = interval_text(row.get("oe_lower_95"), row.get("oe_upper_95"))
        out["ci998"] = interval_text(row.get("oe_lower_998"), row.get("oe_upper_998"))
        out["observed_rate"] = percent_text(row.get("observed_rate"))
        out["rsr"] = percent_text(row.get("risk_standardised_rate"))
        out["rar"] = percent_text(row.get("reliability_adjusted_rate"))
        out["shrunken"] = ratio_text(row.get("shrunken_oe"))
        out["change"] = MISSING
        before = cell(previous, threshold) if previous is not None else None
        if before is not None and before.included and before.derived_hidden:
            out["change"] = hide        # the previous O/E is suppressed: the change would give it back
        elif before is not None and before.included:
            out["change"], out["change_reading"] = change_text(
                float(row["oe"]) - float(previous["oe"]) if is_number(row.get("oe")) and is_number(
                    previous.get("oe")) else None, str(row.get("direction") or "lower_is_better"))
    out["reliability"] = ratio_text(row.get("reliability"))
    out["percentile"] = ordinal(row.get("percentile_rank"))
    return out
