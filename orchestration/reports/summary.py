"""Plain-language summary of what stands out in a site's results.

Sentences a clinical lead can read in a minute, ordered by what needs
attention first: concerns (higher than expected, outside the 99.8% limit;
a deterioration CUSUM signal), then things to watch (beyond the 95% limit
only), then good news (lower than expected, improvement since the last
period, an improvement signal, being a positive deviant), then information
(too few cases to rank, data not included).

Numbers in sentences obey the same display rule as the tables
(:mod:`.display`): a suppressed cell's O/E and interval are never quoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .display import Cell, interval_text, is_number, ratio_text

if TYPE_CHECKING:
    from .site_report import MonitoringCharts

LEVEL_ORDER = {"concern": 0, "watch": 1, "good": 2, "info": 3}


@dataclass(frozen=True)
class Finding:
    level: str          # concern | watch | good | info
    text: str
    measure_id: str | None = None


@dataclass
class MeasureFacts:
    """What the summary needs to know about one measure for the site."""

    measure_id: str
    label: str
    direction: str
    period: str
    row: dict | None                   # the site's result row this period
    cell: Cell | None
    previous: dict | None = None       # the site's row in the previous period
    previous_cell: Cell | None = None
    previous_period: str | None = None
    monitoring: MonitoringCharts | None = None     # its CUSUM signal months in ``period``
    peer_deviants: tuple[str, ...] = ()
    site_is_deviant: bool = False
    quiet_not_included: bool = False   # the header already says the period's data were not included


def _lower(label: str) -> str:
    """'30-day mortality' stays, 'Any morbidity ...' becomes 'any morbidity ...' inside a sentence."""
    return label[:1].lower() + label[1:] if label[:1].isupper() and not label[:2].isupper() else label


def _your(label: str) -> str:
    """'Your 30-day mortality', 'Your rate of any morbidity within 30 days'."""
    text = _lower(label)
    return f"Your {text}" if any(w in text for w in ("mortality", "rate")) else f"Your rate of {text}"


def _values(row: dict, cell: Cell) -> str:
    if cell.derived_hidden:
        return " (figures not shown: small numbers)"
    if not is_number(row.get("oe")):
        return ""
    return (f" (O/E {ratio_text(row['oe'])}, 95% CI "
            f"{interval_text(row.get('oe_lower_95'), row.get('oe_upper_95'))})")


def _beyond_95(row: dict) -> str | None:
    oe, lo, hi = row.get("oe"), row.get("funnel_lower_95"), row.get("funnel_upper_95")
    if not (is_number(oe) and is_number(lo) and is_number(hi)):
        return None
    if float(oe) > float(hi):
        return "high"
    if float(oe) < float(lo):
        return "low"
    return None


def measure_findings(f: MeasureFacts) -> list[Finding]:
    out: list[Finding] = []
    name = f.label
    lower_better = f.direction != "higher_is_better"
    row, cell = f.row, f.cell
    if row is None or cell is None or not cell.included:
        if not f.quiet_not_included:
            out.append(Finding("info", f"{name}: your data for {f.period} were not included in the comparison.",
                               f.measure_id))
    else:
        status = row.get("outlier_status")
        values = _values(row, cell)
        if status == "high":
            level = "concern" if lower_better else "good"
            out.append(Finding(level, f"{_your(name)} was higher than expected{values}, "
                                      "outside the 99.8% limit.", f.measure_id))
        elif status == "low":
            level = "good" if lower_better else "concern"
            out.append(Finding(level, f"{_your(name)} was lower than expected{values}, "
                                      "outside the 99.8% limit.", f.measure_id))
        elif status == "insufficient_cases":
            out.append(Finding("info", f"{name}: too few cases to rank this period; your results are shown "
                                       "but not compared.", f.measure_id))
        else:
            side = _beyond_95(row)
            worse_side = "high" if lower_better else "low"
            if side == worse_side:
                word = "higher" if side == "high" else "lower"
                out.append(Finding("watch", f"{_your(name)} was {word} than expected{values}: beyond the "
                                            "95% limit but within the 99.8% limit. Worth a look.", f.measure_id))
            elif side is not None:
                word = "higher" if side == "high" else "lower"
                out.append(Finding("good", f"{_your(name)} was {word} than expected{values}, beyond the "
                                           "95% limit (within the 99.8% limit).", f.measure_id))
            else:
                out.append(Finding("info", f"{_your(name)} was as expected{values}.", f.measure_id))
        prev, pcell = f.previous, f.previous_cell
        if prev is not None and pcell is not None and pcell.included:
            before, now = prev.get("outlier_status"), status
            bad = "high" if lower_better else "low"
            if before == bad and now in ("as_expected", "low" if lower_better else "high"):
                out.append(Finding("good", f"{name} improved: it was flagged as "
                                           f"{'higher' if bad == 'high' else 'lower'} than expected in "
                                           f"{f.previous_period} and is no longer.", f.measure_id))
            elif now == bad and before not in (bad, None, "not_included", "insufficient_cases"):
                out.append(Finding("concern", f"{name} is newly flagged this period (it was not in "
                                              f"{f.previous_period}).", f.measure_id))
            elif not cell.derived_hidden and not pcell.derived_hidden and is_number(row.get("oe")) \
                    and is_number(prev.get("oe")):
                change = float(row["oe"]) - float(prev["oe"])
                better = (change < 0) == lower_better
                if abs(change) >= 0.2:
                    word = "improved" if better else "worsened"
                    out.append(Finding("good" if better else "watch",
                                       f"{name} {word} since {f.previous_period}: O/E "
                                       f"{ratio_text(prev['oe'])} → {ratio_text(row['oe'])}.", f.measure_id))
    m = f.monitoring
    if m is not None:
        worse = m.signal_months("worse", f.period)
        better = m.signal_months("better", f.period)
        if worse:
            out.append(Finding("concern", f"The risk-adjusted CUSUM for {_lower(name)} signalled a possible "
                                          f"doubling of the odds of an event in {', '.join(worse)}: "
                                          "review those cases.", f.measure_id))
        if better:
            out.append(Finding("good", f"The risk-adjusted CUSUM for {_lower(name)} signalled a halving of the "
                                       f"odds of an event in {', '.join(better)}.", f.measure_id))
    if f.site_is_deviant:
        out.append(Finding("good", f"You are a positive deviant for {_lower(name)}: reliably better than "
                                   "expected for at least two consecutive periods. Others may ask to learn "
                                   "from you.", f.measure_id))
    elif f.peer_deviants:
        codes = ", ".join(f.peer_deviants)
        peers = "peer" if len(f.peer_deviants) == 1 else "peers"
        out.append(Finding("info", f"To learn from for {_lower(name)}: {peers} {codes} (positive deviants).",
                           f.measure_id))
    return out


def summarise(facts: list[MeasureFacts], *, quality_status: str | None = None,
              quality_reason: str | None = None) -> list[Finding]:
    """All findings, the most pressing first (stable within a level: measure order)."""
    findings: list[Finding] = []
    if quality_status == "red":
        findings.append(Finding("concern", "Your data for this period were not included: " + (
            quality_reason or "the data-quality status is red.")))
    elif quality_status == "yellow":
        findings.append(Finding("watch", "Your data-quality status is yellow: " + (
            quality_reason or "some checks need attention.")))
    for f in facts:
        findings.extend(measure_findings(f))
    return sorted(findings, key=lambda x: LEVEL_ORDER.get(x.level, 9))
