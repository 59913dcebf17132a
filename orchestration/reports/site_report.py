"""The per-site feedback report: one self-contained HTML file per site and period.

What it shows (issue 7, item 4): the site's results for every measure beside
blinded peers, a funnel plot, a caterpillar plot of reliability-adjusted O/E,
a trend chart with control limits, a risk-adjusted CUSUM and a VLAD chart
over its own cases, a plain-language summary, the positive deviants to
learn from, and its data-quality state.

Blinding: ``results`` holds every site's rows, but only the site's own
``site_id`` and name are printed; a peer appears only as its
``blinded_code`` (hover text on funnel points, the list of positive
deviants). Nothing else from a peer's row is printed as text.

Suppression: counts from 1 to ``small_cell_threshold`` show as "≤10" and the
numbers that would give them back as "suppressed"; charts plot positions but
never print a suppressed cell's value. The full rule is in
:mod:`orchestration.reports.display`.

Self-contained: inline CSS and inline SVG, no script, no font, no image, no
URL. Given ``generated_at``, the output is a pure function of the inputs
(stable element ids), so a publication re-run reproduces it byte for byte.

For a publication of many sites, build the peer layers of the funnel and
caterpillar plots once per period with :func:`prepare_peer_charts` and pass
them as ``peer_charts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

import pandas as pd
from markupsafe import Markup
from pandas.core.dtypes.cast import maybe_box_native

from . import charts
from .display import (
    MISSING,
    QUALITY_TEXT,
    SUPPRESSED,
    cell,
    interval_text,
    is_number,
    percent_text,
    ratio_text,
    result_cells,
)
from .series import CUSUM_H, CaseMonitoring, case_monitoring, oe_control_limits
from .summary import MeasureFacts, summarise
from .templating import render

DEVIANT_RULE = ("A positive deviant is a site that is reliably better than expected: its reliability-adjusted "
                "O/E is a low outlier (the upper end of its 95% interval is below 1), the reliability of its "
                "estimate is at least 0.4, and both have held for at least two consecutive periods. "
                "Consistency matters more than rank.")


@dataclass
class PeerCharts:
    """The site-independent layers of one period's funnel and caterpillar plots, per measure."""

    period: str
    funnels: dict[str, charts.FunnelBase]
    caterpillars: dict[str, charts.CaterpillarBase]
    plot_suppressed_cells: bool
    periods: list[str]                 # every period in the results, sorted
    deviants: pd.DataFrame             # site_id, measure_id, blinded_code of the period's positive deviants

    @cached_property
    def deviant_sites(self) -> dict[str, list[tuple[str, str]]]:
        """``deviants`` as measure -> [(site_id, blinded_code)], in table order: every report asks
        for every measure, and filtering the frame per measure and site cost more than the lookup."""
        out: dict[str, list[tuple[str, str]]] = {}
        for site, measure, code in zip(self.deviants["site_id"].tolist(), self.deviants["measure_id"].tolist(),
                                       self.deviants["blinded_code"].tolist()):
            out.setdefault(measure, []).append((site, code))
        return out


def _rows(frame: pd.DataFrame) -> list[dict]:
    """``frame.to_dict("records")``, the same values of the same types, at a quarter of its cost.

    ``to_dict`` builds a Series per column (``itertuples``): ~2.5 ms on a site's 30 x 35 results,
    paid several times per report. One ``to_numpy(dtype=object)`` gives the values as to_dict's
    column iteration does (Python float/int/bool from numpy columns, Timestamps, NaN for a missing
    ``str``), and ``maybe_box_native``, which to_dict applies to object and extension columns, turns
    numpy scalars into Python ones and ``pd.NA`` into None (a no-op on the other values).
    tests/unit/test_site_report_rows.py holds it to ``to_dict`` over every kind of column.
    """
    names = frame.columns.tolist()
    return [dict(zip(names, map(maybe_box_native, row))) for row in frame.to_numpy(dtype=object).tolist()]


def _measure_list(measures: pd.DataFrame, results: pd.DataFrame) -> list[dict]:
    if measures is not None and len(measures):
        label = "label" if "label" in measures else "measure_label"
        return [{"measure_id": str(r["measure_id"]), "label": str(r.get(label) or r["measure_id"]),
                 "direction": str(r.get("direction") or "lower_is_better")} for r in _rows(measures)]
    seen = results.drop_duplicates("measure_id")
    return [{"measure_id": str(r["measure_id"]), "label": str(r.get("measure_label") or r["measure_id"]),
             "direction": str(r.get("direction") or "lower_is_better")} for r in _rows(seen)]


def prepare_peer_charts(results: pd.DataFrame, funnel_curves: pd.DataFrame, period: str, measures: pd.DataFrame,
                        *, small_cell_threshold: int = 10, plot_suppressed_cells: bool = True) -> PeerCharts:
    """Build, once per period, every measure's funnel and caterpillar plot without a highlighted site.

    Peers are drawn as points labelled (hover) by blinded code only.
    """
    period = str(period)
    now = results[(results["period"].astype(str) == period) & results["is_included"].astype(bool)]
    funnels, cats = {}, {}
    for m in _measure_list(measures, results):
        mid = m["measure_id"]
        rows = now[now["measure_id"] == mid]
        if not plot_suppressed_cells and len(rows):
            rows = rows[[not cell(r, small_cell_threshold).derived_hidden for r in _rows(rows)]]
        curves = funnel_curves[(funnel_curves["period"].astype(str) == period)
                               & (funnel_curves["measure_id"] == mid)] if funnel_curves is not None else None
        points = [charts.FunnelPoint(float(e), float(o), str(code)) for e, o, code in zip(
            rows["expected"], rows["oe"], rows["blinded_code"]) if is_number(e) and is_number(o)]
        funnels[mid] = charts.funnel_base(
            curves, points, uid=f"funnel-{mid}",
            title=f"Funnel plot: {m['label']}, {period}",
            desc="Observed/expected ratio of every included site against its expected number of events, with "
                 "95% and 99.8% control limits around O/E = 1. Your site is highlighted; other sites are grey "
                 "and identified only by blinded code.")
        cats[mid] = charts.caterpillar_base(
            [str(c) for c in rows["blinded_code"]], rows["shrunken_oe"], rows["shrunken_oe_lower_95"],
            rows["shrunken_oe_upper_95"], uid=f"caterpillar-{mid}",
            title=f"Caterpillar plot: reliability-adjusted O/E, {m['label']}, {period}",
            desc="Reliability-adjusted (shrunken) O/E with 95% intervals for every included site, lowest to "
                 "highest. Your site is highlighted; other sites are not labelled.")
    deviants = results[(results["period"].astype(str) == period)
                       & results["is_positive_deviant"].fillna(False).astype(bool)]
    return PeerCharts(period=period, funnels=funnels, caterpillars=cats, plot_suppressed_cells=plot_suppressed_cells,
                      periods=sorted(str(p) for p in results["period"].unique()),
                      deviants=deviants[["site_id", "measure_id", "blinded_code"]].astype(str))


def _quality_reason(q: dict | None) -> str | None:
    if q is None:
        return None
    bits = []
    blocking = q.get("blocking_open")
    if is_number(blocking) and float(blocking) > 0:
        n = int(float(blocking))
        bits.append(f"{n} blocking data {'query' if n == 1 else 'queries'} open")
    completeness = q.get("completeness")
    if is_number(completeness):
        c = float(completeness)
        bits.append(f"completeness {c * 100 if c <= 1 else c:.1f}%")
    status = str(q.get("status") or "")
    head = f"the data-quality status of this period is {status}" if status else "the data-quality check failed"
    return head + (" (" + ", ".join(bits) + ")" if bits else "") + "."


def _quality_rows(quality: pd.DataFrame | None, up_to: str) -> list[dict]:
    if quality is None or not len(quality):
        return []
    out = []
    for q in _rows(quality.sort_values("period")):
        if str(q["period"]) > up_to:
            continue
        c = q.get("completeness")
        out.append({
            "period": str(q["period"]), "status": str(q.get("status") or ""),
            "status_text": QUALITY_TEXT.get(str(q.get("status")), str(q.get("status") or MISSING)),
            "completeness": (percent_text(c) if is_number(c) and float(c) <= 1 else
                             f"{float(c):.1f}%" if is_number(c) else MISSING),
            "open_queries": f"{int(float(q['open_queries'])):,}" if is_number(q.get("open_queries")) else MISSING,
            "blocking_open": f"{int(float(q['blocking_open'])):,}" if is_number(q.get("blocking_open")) else MISSING,
        })
    return out


def _oe_title(prefix: str, row: dict, hidden: bool, threshold: int) -> str:
    if hidden:
        return f"{prefix}: values suppressed (small numbers, ≤{threshold})"
    return (f"{prefix}: O/E {ratio_text(row.get('oe'))} "
            f"(95% CI {interval_text(row.get('oe_lower_95'), row.get('oe_upper_95'))})")


@dataclass(frozen=True)
class MonitoringCharts:
    """One measure's CUSUM and VLAD as a site's report draws them, and the months of ``period`` in
    which the CUSUM signalled: everything a report and the overview take from the site's cases."""

    period: str
    cusum: str
    vlad: str
    worse: tuple[str, ...]
    better: tuple[str, ...]

    def signal_months(self, kind: str, period: str) -> list[str]:
        if str(period) != self.period:
            raise ValueError(f"charts drawn for {self.period}, asked about {period}")
        return list(self.worse if kind == "worse" else self.better)


def monitoring_charts(monitored: CaseMonitoring | None, label: str, period: str) -> MonitoringCharts | None:
    """Draw a measure's CUSUM and VLAD (``case_monitoring`` of the site's cases up to ``period``)."""
    if monitored is None:
        return None
    mid = monitored.measure_id
    cusum = charts.cusum_chart(
        monitored.upper, monitored.lower, h=CUSUM_H, boundaries=monitored.boundaries,
        upper_signals=monitored.upper_signals, lower_signals=monitored.lower_signals, uid=f"cusum-{mid}",
        title=f"Risk-adjusted CUSUM: {label}",
        desc="Steiner risk-adjusted CUSUM over your cases in operation-date order: above zero tests for "
             "a doubling of the odds of an event, below zero for a halving; a signal is a crossing of "
             f"±{CUSUM_H:g}.")
    vlad = charts.vlad_chart(
        monitored.vlad, boundaries=monitored.boundaries, uid=f"vlad-{mid}",
        title=f"VLAD: {label}",
        desc="Variable life-adjusted display: cumulative expected minus observed events over your cases; "
             "rising means fewer events than the risk model predicted.")
    return MonitoringCharts(str(period), cusum, vlad, tuple(monitored.signal_months("worse", str(period))),
                            tuple(monitored.signal_months("better", str(period))))


def site_monitoring_charts(parts: dict[str, pd.DataFrame], measures: pd.DataFrame, results: pd.DataFrame,
                           period: str) -> dict[str, MonitoringCharts | None]:
    """Every measure's charts from a site's cases (``parts``: measure -> its cases), as its report draws them."""
    return {m["measure_id"]: monitoring_charts(case_monitoring(parts[m["measure_id"]], m["measure_id"], up_to=period),
                                               m["label"], period) if m["measure_id"] in parts else None
            for m in _measure_list(measures, results)}


def render_site_report(site_id: str, site_name: str, period: str, results: pd.DataFrame,
                       funnel_curves: pd.DataFrame, cases: pd.DataFrame | None, quality: pd.DataFrame | None,
                       measures: pd.DataFrame, registry_name: str, small_cell_threshold: int = 10,
                       generated_at: str | None = None, *, peer_charts: PeerCharts | None = None,
                       plot_suppressed_cells: bool = True,
                       monitoring: dict[str, MonitoringCharts | None] | None = None) -> str:
    """One site's feedback report for ``period`` as a self-contained HTML document (a string).

    ``monitoring``: the CUSUM and VLAD charts of measures already drawn with
    ``monitoring_charts`` (a publication reuses them for the overview, and
    keeps them for sites whose cases do not change); the others are drawn
    here from ``cases``.
    """
    period = str(period)
    t = int(small_cell_threshold)
    generated_at = generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if peer_charts is None or peer_charts.period != period:
        peer_charts = prepare_peer_charts(results, funnel_curves, period, measures, small_cell_threshold=t,
                                          plot_suppressed_cells=plot_suppressed_cells)
    periods = [p for p in peer_charts.periods if p <= period]
    previous_period = periods[-2] if len(periods) > 1 else None
    # the site's rows as dicts once, then plain Python: pandas filters cost ~0.2 ms each on these small frames
    sid = str(site_id)
    own = results[results["site_id"] == sid]
    own_rows = _rows(own)
    blinded_code = next((str(r["blinded_code"]) for r in own_rows if not pd.isna(r["blinded_code"])), MISSING)
    own_by_key = {(str(r["measure_id"]), str(r["period"])): r for r in own_rows}

    qrows = _quality_rows(quality, period)
    qnow = None
    if quality is not None and len(quality):
        qnow = next((q for q in _rows(quality) if str(q["period"]) == period), None)
    own_now = [r for r in own_rows if str(r["period"]) == period]
    status = str(qnow["status"]) if qnow is not None and qnow.get("status") else (
        str(own_now[0]["quality_status"]) if own_now and "quality_status" in own.columns else "")
    included_now = any(bool(r["is_included"]) for r in own_now)
    not_included = status == "red" or (len(own_now) > 0 and not included_now)
    reason = _quality_reason(qnow) if qnow is not None else (
        f"the data-quality status of this period is {status}." if status else None)

    sections, facts, glance = [], [], []
    for m in _measure_list(measures, results):
        mid, label = m["measure_id"], m["label"]
        table = []
        for i, p in enumerate(periods):
            row = own_by_key.get((mid, p))
            prev = own_by_key.get((mid, periods[i - 1])) if i > 0 else None
            if row is None:
                continue
            cells = result_cells(row, t, prev)
            cells["period"] = p
            cells["current"] = p == period
            table.append(cells)
        row = own_by_key.get((mid, period))
        c = cell(row, t) if row is not None else None
        prev = own_by_key.get((mid, previous_period)) if previous_period else None
        glance.append({"label": label, "measure_id": mid,
                       **(next((r for r in table if r["current"]), None) or result_cells({"is_included": False}, t))})

        # funnel and caterpillar: the site on top of the period's peer layer
        site_point, site_cat_title = None, None
        if c is not None and c.included and is_number(row.get("oe")) and is_number(row.get("expected")):
            if plot_suppressed_cells or not c.derived_hidden:
                site_point = charts.FunnelPoint(float(row["expected"]), float(row["oe"]),
                                                _oe_title("Your site", row, c.derived_hidden, t), "site")
                band = interval_text(row.get("shrunken_oe_lower_95"), row.get("shrunken_oe_upper_95"))
                site_cat_title = ("Your site: values suppressed (small numbers)" if c.derived_hidden else
                                  f"Your site: reliability-adjusted O/E {ratio_text(row.get('shrunken_oe'))} "
                                  f"(95% interval {band})")
        funnel = charts.funnel_chart(peer_charts.funnels[mid], site_point)
        caterpillar = charts.caterpillar_chart(peer_charts.caterpillars[mid],
                                               blinded_code if site_cat_title else None, title=site_cat_title)

        # trend with control limits
        points = []
        for p in periods:
            r = own_by_key.get((mid, p))
            rc = cell(r, t) if r is not None else None
            if r is None or not rc.included or not is_number(r.get("oe")):
                points.append(charts.TrendPoint(p, math.nan, 1.0, math.nan, math.nan, None))
                continue
            if rc.derived_hidden and not plot_suppressed_cells:
                points.append(charts.TrendPoint(p, math.nan, 1.0, math.nan, math.nan, None, gap="suppressed"))
                continue
            centre, lo, hi = oe_control_limits(float(r["expected"]) if is_number(r.get("expected")) else math.nan)
            oe = float(r["oe"])
            points.append(charts.TrendPoint(p, oe, centre, lo, hi, _oe_title(p, r, rc.derived_hidden, t),
                                            signal=is_number(hi) and (oe > hi or oe < lo)))
        trend = charts.trend_chart(points, highlight=period, uid=f"trend-{mid}",
                                   title=f"Trend: O/E per period, {label}",
                                   desc="Your observed/expected ratio per period with centre line 1 and 3-sigma "
                                        "control limits from each period's expected count.")

        # CUSUM and VLAD over the site's own cases
        charted = monitoring[mid] if monitoring is not None and mid in monitoring else monitoring_charts(
            case_monitoring(cases, mid, up_to=period), label, period)
        cusum, vlad = (charted.cusum, charted.vlad) if charted is not None else (None, None)

        peers = peer_charts.deviant_sites.get(mid, [])
        site_is_deviant = any(site == sid for site, _ in peers)
        peer_codes = tuple(sorted(code for site, code in peers if site != sid))
        facts.append(MeasureFacts(
            measure_id=mid, label=label, direction=m["direction"], period=period, row=row, cell=c,
            previous=prev, previous_cell=cell(prev, t) if prev is not None else None,
            previous_period=previous_period, monitoring=charted, peer_deviants=peer_codes,
            site_is_deviant=site_is_deviant, quiet_not_included=not_included))
        sections.append({
            "measure_id": mid, "label": label, "rows": table,
            "funnel": Markup(funnel), "caterpillar": Markup(caterpillar), "trend": Markup(trend),
            "cusum": Markup(cusum) if cusum else None, "vlad": Markup(vlad) if vlad else None,
            "peer_deviants": peer_codes, "site_is_deviant": site_is_deviant,
            "site_plotted": site_point is not None,
            "included": bool(c and c.included),
        })

    findings = summarise(facts, quality_status=status or None, quality_reason=reason)
    return render("site_report.html.j2", {
        "registry_name": registry_name, "site_id": site_id, "site_name": site_name, "period": period,
        "blinded_code": blinded_code, "generated_at": generated_at, "threshold": t,
        "quality_status": status, "quality_status_text": QUALITY_TEXT.get(status, status or "unknown"),
        "not_included": not_included, "quality_reason": reason, "quality_rows": qrows,
        "findings": findings, "sections": sections, "glance": glance, "deviant_rule": DEVIANT_RULE,
        "cusum_h": CUSUM_H, "suppressed": SUPPRESSED, "plot_suppressed_cells": plot_suppressed_cells,
    })
