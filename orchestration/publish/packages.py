"""Building a period's publication: one package per site and the overview.

A site's package holds its own results for every measure and period, the
comparison with its peers (blinded codes only) for the period, its own cases
with events (its registry case numbers, for morbidity and mortality review),
its data-quality state, and its report. Every table that leaves the
coordinating centre is suppressed (orchestration/publish/suppression.py);
the ``coordinating_centre/`` folder is unblinded and stays in the centre.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..reports import prepare_peer_charts, render_overview, render_site_report
from ..reports.series import cusum_signals
from .inputs import PublicationInputs
from .suppression import suppress_results
from .writers import write_csv, write_text, write_xlsx

COORDINATING_CENTRE = "coordinating_centre"
PEER_COLUMNS = ["period", "measure_id", "measure_label", "site", "quality_status", "cases", "observed", "expected",
                "oe", "oe_lower_95", "oe_upper_95", "oe_lower_998", "oe_upper_998", "risk_standardised_rate",
                "reliability", "reliability_adjusted_rate", "shrunken_oe", "shrunken_oe_lower_95",
                "shrunken_oe_upper_95", "percentile_rank", "outlier_status", "is_positive_deviant"]
OWN_COLUMNS = PEER_COLUMNS[:2] + PEER_COLUMNS[2:3] + ["quality_status", "cases", "observed", "expected", "oe",
                                                      "oe_lower_95", "oe_upper_95", "oe_lower_998", "oe_upper_998",
                                                      "observed_rate", "expected_rate", "risk_standardised_rate",
                                                      "reliability", "reliability_adjusted_rate", "shrunken_oe",
                                                      "shrunken_oe_lower_95", "shrunken_oe_upper_95",
                                                      "percentile_rank", "outlier_status", "is_positive_deviant",
                                                      "oe_change"]


def active_sites(inputs: PublicationInputs) -> pd.DataFrame:
    """Sites with results in the period: every one of them gets a package."""
    submitting = set(inputs.results.loc[inputs.results["period"] == inputs.period, "site_id"])
    return inputs.sites[inputs.sites["site_id"].isin(submitting)]


def _peer_table(suppressed: pd.DataFrame, site_id: str, period: str) -> pd.DataFrame:
    rows = suppressed[suppressed["period"] == period].copy()
    rows["site"] = rows["blinded_code"].where(rows["site_id"] != site_id, rows["blinded_code"] + " (you)")
    return rows.sort_values(["measure_id", "blinded_code"])[PEER_COLUMNS]


def _report_cases(inputs: PublicationInputs, site_id: str) -> pd.DataFrame:
    own = inputs.cases[inputs.cases["site_id"] == site_id]
    return own.rename(columns={"case_id": "case_key"})[
        ["case_key", "period", "operation_date", "measure_id", "is_event", "expected_probability"]]


def _quality_rows(inputs: PublicationInputs, site_id: str) -> pd.DataFrame:
    return inputs.quality[inputs.quality["site_id"] == site_id].drop(columns=["site_id"])


def build_site_package(inputs: PublicationInputs, suppressed: pd.DataFrame, peer_charts, site, folder: Path,
                       registry_name: str, threshold: int, stamp: str) -> list[Path]:
    site_id = site.site_id
    own = suppressed[suppressed["site_id"] == site_id][OWN_COLUMNS]
    peers = _peer_table(suppressed, site_id, inputs.period)
    events = inputs.cases[(inputs.cases["site_id"] == site_id) & inputs.cases["is_event"]
                          & (inputs.cases["period"] == inputs.period)]
    events = events[["case_id", "period", "operation_date", "measure_id", "expected_probability"]]
    quality = _quality_rows(inputs, site_id)
    report = render_site_report(
        site_id, site.display_name, inputs.period, inputs.results, inputs.funnel_curves,
        _report_cases(inputs, site_id), quality, inputs.measures, registry_name,
        small_cell_threshold=threshold, generated_at=stamp, peer_charts=peer_charts, plot_suppressed_cells=False)
    target = folder / "sites" / site_id
    return [
        write_csv(own, target / "my_results.csv"),
        write_csv(peers, target / "comparison.csv"),
        write_csv(events, target / "my_cases_with_events.csv"),
        write_csv(quality, target / "data_quality.csv"),
        write_xlsx({"my_results": own, "comparison": peers, "my_cases_with_events": events,
                    "data_quality": quality}, target / "package.xlsx"),
        write_text(report, target / "report.html"),
    ]


def build_overview(inputs: PublicationInputs, folder: Path, registry_name: str, stamp: str,
                   min_c_statistic: float) -> list[Path]:
    target = folder / COORDINATING_CENTRE
    models = inputs.models.assign(passed=inputs.models["c_statistic"].fillna(1.0) >= min_c_statistic)
    signals = cusum_signals(inputs.cases.rename(columns={"case_id": "case_key"}), inputs.period)
    html = render_overview(inputs.period, inputs.results, inputs.quality, models, None, registry_name,
                           site_names=inputs.sites.set_index("site_id")["display_name"].to_dict(),
                           measures=inputs.measures, funnel_curves=inputs.funnel_curves,
                           cusum_signals=signals, generated_at=stamp)
    unblinded = inputs.results.merge(inputs.sites[["site_id", "display_name"]], on="site_id", how="left")
    return [
        write_text(html, target / "overview.html"),
        write_csv(unblinded, target / "site_results_unblinded.csv"),
        write_csv(inputs.quality, target / "data_quality_all_sites.csv"),
        write_csv(models, target / "model_quality.csv"),
    ]


def build_publication(inputs: PublicationInputs, folder: Path, registry_name: str, threshold: int,
                      min_c_statistic: float, stamp: str) -> list[Path]:
    """Write every package and the overview under ``folder``; return the files written."""
    suppressed = suppress_results(inputs.results, threshold)
    peer_charts = prepare_peer_charts(inputs.results, inputs.funnel_curves, inputs.period, inputs.measures,
                                      small_cell_threshold=threshold, plot_suppressed_cells=False)
    written = []
    for site in active_sites(inputs).itertuples():
        written += build_site_package(inputs, suppressed, peer_charts, site, folder, registry_name, threshold, stamp)
    written += build_overview(inputs, folder, registry_name, stamp, min_c_statistic)
    return written
