"""Series over time for the reports: O/E control limits per period, case-level CUSUM and VLAD.

Trend chart (a standardised-ratio control chart). Under "performing as the
risk model predicts", a site's observed count in a period is Poisson with
mean E (its expected count), so O/E has mean 1 and standard deviation
1/sqrt(E). The chart's centre line is 1 and its limits 1 +/- 3/sqrt(E_t),
the lower one floored at 0: the p-chart of ``orchestration.stats.spc.p_chart``
carried over to the risk-adjusted ratio, with limits that widen in periods
with fewer expected events (the u-chart of Montgomery 2013, sec. 7.3, with
E_t as the area of opportunity). A point outside them is a special-cause
signal.

CUSUM: ``orchestration.stats.spc.risk_adjusted_cusum`` (Steiner et al. 2000)
over the site's cases in operation-date order, twice: odds ratio 2
(deterioration, plotted above zero) and 1/2 (improvement, below zero), both
with h = 4.5 and restarting at zero after a signal (as after an
investigation), so that later signals show. VLAD: ``orchestration.stats.spc.vlad``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..stats.spc import risk_adjusted_cusum, vlad

CUSUM_H = 4.5
CUSUM_ODDS_WORSE = 2.0
CUSUM_ODDS_BETTER = 0.5


def oe_control_limits(expected: float, sigma: float = 3.0) -> tuple[float, float, float]:
    """Centre, lower and upper control limit of O/E for a period with ``expected`` events."""
    if not (expected is not None and math.isfinite(expected) and expected > 0):
        return 1.0, float("nan"), float("nan")
    half = sigma / math.sqrt(expected)
    return 1.0, max(0.0, 1.0 - half), 1.0 + half


@dataclass
class CaseMonitoring:
    """CUSUM and VLAD over one measure's cases for one site."""

    measure_id: str
    periods: list[str]
    boundaries: list[tuple[int, str]]               # (index of the first case, period)
    upper: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lower: np.ndarray = field(default_factory=lambda: np.zeros(0))
    upper_signals: list[int] = field(default_factory=list)
    lower_signals: list[int] = field(default_factory=list)
    vlad: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dates: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="datetime64[ns]"))
    case_periods: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.vlad)

    def signal_periods(self, kind: str) -> list[str]:
        idx = self.upper_signals if kind == "worse" else self.lower_signals
        return [self.case_periods[i] for i in idx]

    def signal_months(self, kind: str, period: str | None = None) -> list[str]:
        """Months (e.g. 'March 2025') with a signal, optionally only within ``period``."""
        idx = self.upper_signals if kind == "worse" else self.lower_signals
        months = []
        for i in idx:
            if period is not None and self.case_periods[i] != period:
                continue
            d = pd.Timestamp(self.dates[i])
            text = d.strftime("%B %Y") if not pd.isna(d) else self.case_periods[i]
            if text not in months:
                months.append(text)
        return months


def case_monitoring(cases: pd.DataFrame, measure_id: str, up_to: str | None = None) -> CaseMonitoring | None:
    """CUSUM (both directions) and VLAD over the measure's cases up to and including period ``up_to``.

    Cases without a valid expected probability are left out (they carry no
    risk-adjusted information); None when no case remains.
    """
    if cases is None or len(cases) == 0:
        return None
    measure = cases["measure_id"].to_numpy() == measure_id
    periods = cases["period"].to_numpy().astype(str)
    keep = measure & (periods <= str(up_to)) if up_to is not None else measure
    p = pd.to_numeric(cases["expected_probability"], errors="coerce").to_numpy(dtype=float)
    events = cases["is_event"]
    keep &= np.isfinite(p) & events.notna().to_numpy()
    if not keep.any():
        return None
    dates = pd.to_datetime(cases["operation_date"], errors="coerce").to_numpy()[keep]
    keys = cases["case_key"].to_numpy().astype(str)[keep]
    order = np.lexsort((keys, dates))                      # by date, then case key
    yv = events.to_numpy()[keep][order].astype(bool).astype(float)
    pv = np.clip(p[keep][order], 1e-6, 1 - 1e-6)
    case_periods = periods[keep][order].tolist()
    worse = risk_adjusted_cusum(yv, pv, odds_ratio=CUSUM_ODDS_WORSE, h=CUSUM_H, reset=True)
    better = risk_adjusted_cusum(yv, pv, odds_ratio=CUSUM_ODDS_BETTER, h=CUSUM_H, reset=True)
    boundaries, last = [], None
    for i, period in enumerate(case_periods):
        if period != last:
            boundaries.append((i, period))
            last = period
    # With reset, the value stored at a signal is its height; the chart restarts at the next case.
    return CaseMonitoring(measure_id=measure_id, periods=[b[1] for b in boundaries], boundaries=boundaries,
                          upper=worse["cusum"].to_numpy(), lower=better["cusum"].to_numpy(),
                          upper_signals=np.flatnonzero(worse["signal"].to_numpy()).tolist(),
                          lower_signals=np.flatnonzero(better["signal"].to_numpy()).tolist(),
                          vlad=vlad(yv, pv), dates=dates[order], case_periods=case_periods)


def signal_rows(site_id, measure_id, monitoring: CaseMonitoring | None, period: str) -> list[dict]:
    """The overview's CUSUM signal rows of one site and measure within ``period`` (see ``cusum_signals``)."""
    rows = []
    if monitoring is None:
        return rows
    for kind in ("worse", "better"):
        months = monitoring.signal_months(kind, str(period))
        if months:
            rows.append({"site_id": site_id, "measure_id": measure_id, "direction": kind, "months": ", ".join(months)})
    return rows


SIGNAL_COLUMNS = ["site_id", "measure_id", "direction", "months"]


def cusum_signals(cases: pd.DataFrame, period: str, site_column: str = "site_id") -> pd.DataFrame:
    """Deterioration and improvement CUSUM signals within ``period``, per site and measure, for the overview.

    ``cases``: the case rows of many sites (the report's ``cases`` shape plus
    ``site_column``). Columns: site_id, measure_id, direction ('worse' or
    'better'), months (e.g. 'March 2025').
    """
    rows = []
    if cases is None or len(cases) == 0:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    for (site, measure), group in cases.groupby([site_column, "measure_id"], sort=True):
        rows += signal_rows(site, measure, case_monitoring(group, str(measure), up_to=period), period)
    return pd.DataFrame(rows, columns=SIGNAL_COLUMNS)
