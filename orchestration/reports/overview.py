"""The coordinating-centre overview: every site unblinded, one self-contained HTML file per period.

It answers the centre's questions at data lock: whose data are in, how good
are the risk models, who stands out (both ways), and whom to call. It stays
inside the centre, so names, codes and counts are shown unsuppressed; it must
never be put in a site's package.

"Sites that need a conversation" lists, per site, every reason found:

* a high outlier (outside the 99.8% limit) on any measure;
* data-quality status red in the period (its data were left out);
* a deterioration CUSUM signal in the period (``cusum_signals``, as made by
  :func:`orchestration.reports.series.cusum_signals`);
* at least ``blocking_query_limit`` blocking queries open.

Sites with more reasons come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

import pandas as pd
from markupsafe import Markup

from . import charts
from .display import MISSING, QUALITY_TEXT, STATUS_TEXT, interval_text, is_number, percent_text, ratio_text
from .site_report import DEVIANT_RULE, _measure_list
from .templating import render


def _names(site_names, *frames) -> dict[str, str]:
    names: dict[str, str] = {}
    for frame in frames:
        if frame is None or not len(frame) or "site_id" not in frame:
            continue
        for column in ("site_name", "display_name"):
            if column in frame:
                names.update({str(s): str(n) for s, n in zip(frame["site_id"], frame[column]) if isinstance(n, str)})
    if isinstance(site_names, pd.DataFrame):
        column = "display_name" if "display_name" in site_names else "site_name"
        names.update({str(s): str(n) for s, n in zip(site_names["site_id"], site_names[column])})
    elif isinstance(site_names, Mapping):
        names.update({str(k): str(v) for k, v in site_names.items()})
    return names


def _num(value, fmt: str = "{:.3f}") -> str:
    return fmt.format(float(value)) if is_number(value) else MISSING


def render_overview(period: str, results: pd.DataFrame, quality_all: pd.DataFrame | None,
                    model_quality: pd.DataFrame | None, deviants: pd.DataFrame | None, registry_name: str, *,
                    site_names: Mapping[str, str] | pd.DataFrame | None = None, measures: pd.DataFrame | None = None,
                    funnel_curves: pd.DataFrame | None = None, cusum_signals: pd.DataFrame | None = None,
                    blocking_query_limit: int = 5, generated_at: str | None = None) -> str:
    """The unblinded overview for ``period`` as a self-contained HTML document.

    ``results``: all sites' result rows (the site report's shape).
    ``quality_all``: site_id, period, status, completeness, open_queries,
    blocking_open. ``model_quality``: measure_id, model_version, cases,
    events, c_statistic, calibration_intercept, calibration_slope,
    hosmer_lemeshow_p, brier_score, passed. ``deviants``: rows with site_id
    and measure_id (and optionally period) of positive deviants; None to
    take ``results.is_positive_deviant``. ``site_names``: site_id to name
    (else a site_name/display_name column of ``results`` or ``quality_all``;
    else the site id).
    """
    period = str(period)
    generated_at = generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    names = _names(site_names, results, quality_all)
    measure_list = _measure_list(measures, results)
    labels = {m["measure_id"]: m["label"] for m in measure_list}
    now = results[results["period"].astype(str) == period]
    codes = dict(zip(results["site_id"].astype(str), results["blinded_code"].astype(str)))
    site_ids = sorted(set(results["site_id"].astype(str)) | (
        set(quality_all["site_id"].astype(str)) if quality_all is not None and len(quality_all) else set()))
    name = lambda s: names.get(s, s)  # noqa: E731

    # data quality
    qperiods, qnow = [], {}
    qmatrix: dict[str, dict[str, str]] = {s: {} for s in site_ids}
    if quality_all is not None and len(quality_all):
        q = quality_all[quality_all["period"].astype(str) <= period]
        qperiods = sorted(q["period"].astype(str).unique())[-6:]
        for r in q.to_dict("records"):
            qmatrix.setdefault(str(r["site_id"]), {})[str(r["period"])] = str(r.get("status") or "")
            if str(r["period"]) == period:
                qnow[str(r["site_id"])] = r
    quality_rows = []
    for s in site_ids:
        r = qnow.get(s, {})
        c = r.get("completeness")
        quality_rows.append({
            "site_id": s, "name": name(s), "code": codes.get(s, MISSING),
            "history": [(p, qmatrix.get(s, {}).get(p, "")) for p in qperiods],
            "status": str(r.get("status") or ""),
            "completeness": (percent_text(c) if is_number(c) and float(c) <= 1 else
                             f"{float(c):.1f}%" if is_number(c) else MISSING),
            "open_queries": f"{int(float(r['open_queries'])):,}" if is_number(r.get("open_queries")) else MISSING,
            "blocking_open": f"{int(float(r['blocking_open'])):,}" if is_number(r.get("blocking_open")) else MISSING,
        })
    order = {"red": 0, "yellow": 1, "green": 2, "": 3}
    quality_rows.sort(key=lambda r: (order.get(r["status"], 3), r["name"]))

    # positive deviants
    if deviants is None:
        dev = now[now["is_positive_deviant"].fillna(False).astype(bool)][["site_id", "measure_id"]]
    else:
        dev = deviants
        if "period" in dev:
            dev = dev[dev["period"].astype(str) == period]
    dev_pairs = {(str(s), str(m)) for s, m in zip(dev["site_id"], dev["measure_id"])}
    deviant_rows = [{"label": m["label"], "sites": [(name(s), codes.get(s, MISSING)) for s, mid in sorted(
        dev_pairs, key=lambda x: name(x[0])) if mid == m["measure_id"]]} for m in measure_list]

    # results at a glance
    by_key = {(str(r["site_id"]), str(r["measure_id"])): r for r in now.to_dict("records")}
    glance = []
    for s in site_ids:
        cells = []
        for m in measure_list:
            r = by_key.get((s, m["measure_id"]))
            status = str(r.get("outlier_status")) if r else "not_included"
            cells.append({"status": status, "oe": ratio_text(r.get("oe")) if r else MISSING,
                          "title": (f"{m['label']}: {STATUS_TEXT.get(status, status)}; cases "
                                    f"{int(r['cases']) if is_number(r.get('cases')) else MISSING}, O/E "
                                    f"{ratio_text(r.get('oe'))} (95% CI "
                                    f"{interval_text(r.get('oe_lower_95'), r.get('oe_upper_95'))})") if r else "",
                          "deviant": (s, m["measure_id"]) in dev_pairs})
        glance.append({"site_id": s, "name": name(s), "code": codes.get(s, MISSING), "cells": cells})
    glance.sort(key=lambda g: g["name"])

    # sites that need a conversation
    reasons: dict[str, list[str]] = {s: [] for s in site_ids}
    for r in now.to_dict("records"):
        if r.get("outlier_status") == "high":
            reasons[str(r["site_id"])].append(
                f"Higher than expected: {labels.get(str(r['measure_id']), r['measure_id'])} "
                f"(O/E {ratio_text(r.get('oe'))}, 95% CI {interval_text(r.get('oe_lower_95'), r.get('oe_upper_95'))})")
    for s in site_ids:
        r = qnow.get(s)
        if r is not None and str(r.get("status")) == "red":
            reasons[s].append("Data-quality status red: data not included this period")
        elif r is None:
            statuses = now[now["site_id"].astype(str) == s]["quality_status"]
            if len(statuses) and (statuses.astype(str) == "red").any():
                reasons[s].append("Data-quality status red: data not included this period")
        if r is not None and is_number(r.get("blocking_open")) and float(r["blocking_open"]) >= blocking_query_limit:
            reasons[s].append(f"{int(float(r['blocking_open']))} blocking queries open")
    if cusum_signals is not None and len(cusum_signals):
        for r in cusum_signals.to_dict("records"):
            if str(r.get("direction", "worse")) == "worse":
                reasons.setdefault(str(r["site_id"]), []).append(
                    f"CUSUM signal (odds doubling): {labels.get(str(r['measure_id']), r['measure_id'])}"
                    + (f" in {r['months']}" if r.get("months") else ""))
    conversation = sorted(({"name": name(s), "code": codes.get(s, MISSING), "reasons": rs}
                           for s, rs in reasons.items() if rs), key=lambda x: (-len(x["reasons"]), x["name"]))

    # model quality
    model_rows = []
    if model_quality is not None and len(model_quality):
        for r in model_quality.to_dict("records"):
            model_rows.append({
                "label": labels.get(str(r["measure_id"]), str(r["measure_id"])),
                "version": str(r.get("model_version") or MISSING),
                "cases": f"{int(r['cases']):,}" if is_number(r.get("cases")) else MISSING,
                "events": f"{int(r['events']):,}" if is_number(r.get("events")) else MISSING,
                "c": _num(r.get("c_statistic")), "intercept": _num(r.get("calibration_intercept")),
                "slope": _num(r.get("calibration_slope")), "hl": _num(r.get("hosmer_lemeshow_p")),
                "brier": _num(r.get("brier_score"), "{:.4f}"),
                "passed": bool(r.get("passed")) if r.get("passed") is not None else None,
            })

    # funnels, unblinded
    funnels = []
    for m in measure_list:
        rows = now[(now["measure_id"] == m["measure_id"]) & now["is_included"].astype(bool)]
        points = []
        for r in rows.to_dict("records"):
            if not (is_number(r.get("oe")) and is_number(r.get("expected"))):
                continue
            status = str(r.get("outlier_status"))
            css = {"high": "pt-high", "low": "pt-low"}.get(status, "peer")
            points.append(charts.FunnelPoint(float(r["expected"]), float(r["oe"]),
                                             f"{name(str(r['site_id']))} ({r['blinded_code']}): O/E "
                                             f"{ratio_text(r['oe'])}, E {float(r['expected']):.1f}", css))
        curves = None
        if funnel_curves is not None and len(funnel_curves):
            curves = funnel_curves[(funnel_curves["period"].astype(str) == period)
                                   & (funnel_curves["measure_id"] == m["measure_id"])]
        base = charts.funnel_base(
            curves, points, uid=f"ov-funnel-{m['measure_id']}", title=f"Funnel plot: {m['label']}, {period}",
            desc="Every included site's O/E against its expected events, with 95% and 99.8% limits.",
            legend_items=[charts.LegendItem("Higher than expected", "dot", "pt-high"),
                          charts.LegendItem("Lower", "dot", "pt-low"), charts.LegendItem("Others", "dot", "peer"),
                          charts.LegendItem("95%", "line", "limit95"), charts.LegendItem("99.8%", "line", "limit998")])
        funnels.append({"label": m["label"], "svg": Markup(charts.funnel_chart(base))})

    kpis = [
        (len(site_ids), "sites"),
        (int(now[now["is_included"].astype(bool)]["site_id"].nunique()), "sites with data included"),
        (sum(1 for r in quality_rows if r["status"] == "red"), "sites with red data quality"),
        (int((now["outlier_status"] == "high").sum()), "high outliers (site × outcome)"),
        (len(dev_pairs), "positive deviants (site × outcome)"),
    ]
    return render("overview.html.j2", {
        "registry_name": registry_name, "period": period, "generated_at": generated_at, "kpis": kpis,
        "conversation": conversation, "quality_rows": quality_rows, "qperiods": qperiods,
        "quality_text": QUALITY_TEXT, "measures": measure_list, "glance": glance, "model_rows": model_rows,
        "funnels": funnels, "deviant_rows": deviant_rows, "deviant_rule": DEVIANT_RULE,
        "blocking_query_limit": blocking_query_limit,
    })
