"""Building a period's publication: one package per site and the overview.

A site's package holds its own results for every measure and period, the
comparison with its peers (blinded codes only) for the period, its own cases
with events (its registry case numbers, for morbidity and mortality review),
its data-quality state, and its report. Every table that leaves the
coordinating centre is suppressed (orchestration/publish/suppression.py);
the ``coordinating_centre/`` folder is unblinded and stays in the centre.

The tables every package is cut from are prepared once per period
(``PeriodTables``), not filtered site by site: a publication of 700 sites
must take at most two minutes (benchmarks/bench_publish.py). A site's own
cases (for its CUSUM and VLAD charts) are read by the worker building its
package, from the case file (orchestration/publish/inputs.py), so no process
holds every case of the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..reports import prepare_peer_charts, render_overview, render_site_report
from ..reports.series import SIGNAL_COLUMNS, case_monitoring, signal_rows
from ..reports.site_report import site_monitoring_charts
from .inputs import PublicationInputs
from .monitoring_cache import MonitoringCache, SiteMonitoring
from .suppression import suppress_results
from .tables import SharedTable, SiteTable, site_positions
from .timing import Phases
from .writers import write_csv, write_text
from .xlsx import write_workbook

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


class PeriodTables:
    """Everything a period's packages are cut from that is not a site's own cases, built once
    (orchestration/publish/tables.py). Each package reads its own cases (``site_cases``)."""

    def __init__(self, inputs: PublicationInputs, suppressed: pd.DataFrame):
        period = inputs.period
        self.own = SiteTable(suppressed[OWN_COLUMNS], suppressed["site_id"])
        rows = suppressed[suppressed["period"] == period]
        order = rows.sort_values(["measure_id", "blinded_code"]).index
        rows = rows.loc[order]
        self.peers = SharedTable(rows.assign(site=rows["blinded_code"])[PEER_COLUMNS],
                                 rows.assign(site=rows["blinded_code"] + " (you)")[PEER_COLUMNS], rows["site_id"])
        events = inputs.cases.events(period)
        self.events = SiteTable(events[["case_id", "period", "operation_date", "measure_id", "expected_probability"]],
                                events["site_id"])
        self.quality = SiteTable(inputs.quality.drop(columns=["site_id"]), inputs.quality["site_id"])
        self.quality_frames = _split(inputs.quality.drop(columns=["site_id"]), inputs.quality["site_id"])
        self.results = _split(inputs.results, inputs.results["site_id"])
        self.empty_results = inputs.results.iloc[:0]
        self.empty_quality = inputs.quality.drop(columns=["site_id"]).iloc[:0]


def site_cases(inputs: PublicationInputs, site_id: str) -> dict[str, pd.DataFrame]:
    """A site's cases in the report's shape, measure by measure, read from the case file."""
    cases = inputs.cases.site(site_id).rename(columns={"case_id": "case_key"})[
        ["case_key", "period", "operation_date", "measure_id", "is_event", "expected_probability"]]
    # numpy text columns: the CUSUM reads them without converting Arrow strings
    cases = cases.assign(**{column: _shared_text(cases[column]) for column in ("case_key", "period", "measure_id")})
    groups = pd.Series(np.arange(len(cases))).groupby(cases["measure_id"].to_numpy(), sort=False).indices
    return {str(measure): cases.iloc[rows] for measure, rows in groups.items()}


def _shared_text(column: pd.Series) -> pd.Series:
    """The column as Python strings, one object per distinct value shared by its rows (a period and a
    measure id repeat on every row)."""
    return column.astype("category").astype(object)


def _split(frame: pd.DataFrame, keys: pd.Series) -> dict[str, pd.DataFrame]:
    """Each site's rows of ``frame``, in table order (one pass, not one filter per site)."""
    return {site: frame.iloc[rows] for site, rows in site_positions(keys).items()}


def site_signals(site_id: str, parts: dict[str, pd.DataFrame], monitoring: dict, period: str) -> dict[str, list]:
    """The overview's CUSUM signal rows of a site, for every measure it has cases of (``monitoring``:
    the charts its report already drew)."""
    return {m: signal_rows(site_id, m, monitoring[m] if m in monitoring else
                           case_monitoring(parts[m], m, up_to=period), period) for m in sorted(parts)}


def overview_signals(inputs: PublicationInputs, signalled: dict) -> pd.DataFrame:
    """``cusum_signals`` over every site's cases, reusing the signal rows the site packages found
    (``signalled``: site -> measure -> rows); a site with cases but no package is read here."""
    rows = []
    for site in inputs.cases.site_ids():
        known = signalled.get(site)
        if known is None:
            known = site_signals(site, site_cases(inputs, site), {}, inputs.period)
        rows += [row for measure in sorted(known) for row in known[measure]]
    return pd.DataFrame(rows, columns=SIGNAL_COLUMNS)


def own_monitoring(inputs: PublicationInputs, site_id: str, phases: Phases, cache: MonitoringCache | None = None,
                   key: str | None = None) -> SiteMonitoring:
    """A site's CUSUM and VLAD charts and signal rows: kept from the last publication when its cases are
    unchanged (``key``: orchestration/publish/monitoring_cache.py), else drawn from its cases."""
    kept = cache.load(key) if cache is not None and key is not None else None
    if kept is not None:
        return kept
    with phases("site cases"):
        parts = site_cases(inputs, site_id)
    with phases("site reports"):
        charts = site_monitoring_charts(parts, inputs.measures, inputs.results, inputs.period)
        drawn = SiteMonitoring(charts, site_signals(site_id, parts, charts, inputs.period))
    phases.count("sites whose cases were read")
    if cache is not None and key is not None:
        cache.save(key, drawn)
    return drawn


def build_site_package(inputs: PublicationInputs, tables: PeriodTables, peer_charts, site, folder: Path,
                       registry_name: str, threshold: int, stamp: str, phases: Phases,
                       signalled: dict | None = None, cache: MonitoringCache | None = None,
                       key: str | None = None) -> list[Path]:
    """Write one site's package; add its CUSUM signal rows for the overview to ``signalled``."""
    site_id = site.site_id
    target = folder / "sites" / site_id
    own = own_monitoring(inputs, site_id, phases, cache, key)
    if signalled is not None:
        signalled[site_id] = own.signals
    with phases("site reports"):
        report = render_site_report(
            site_id, site.display_name, inputs.period, tables.results.get(site_id, tables.empty_results),
            inputs.funnel_curves, None, tables.quality_frames.get(site_id, tables.empty_quality), inputs.measures,
            registry_name, small_cell_threshold=threshold, generated_at=stamp, peer_charts=peer_charts,
            plot_suppressed_cells=False, monitoring=own.charts)
        written = [write_text(report, target / "report.html")]
    with phases("csv tables"):
        written[:0] = [
            write_text(tables.own.csv(site_id), target / "my_results.csv"),
            write_text(tables.peers.csv(site_id), target / "comparison.csv"),
            write_text(tables.events.csv(site_id), target / "my_cases_with_events.csv"),
            write_text(tables.quality.csv(site_id), target / "data_quality.csv"),
        ]
    with phases("xlsx workbooks"):
        written.insert(4, write_workbook({
            "my_results": tables.own.sheet(site_id), "comparison": tables.peers.sheet(site_id),
            "my_cases_with_events": tables.events.sheet(site_id), "data_quality": tables.quality.sheet(site_id)},
            target / "package.xlsx"))
    return written


def build_overview(inputs: PublicationInputs, folder: Path, registry_name: str, stamp: str,
                   min_c_statistic: float, signals: pd.DataFrame | None = None) -> list[Path]:
    target = folder / COORDINATING_CENTRE
    models = inputs.models.assign(passed=inputs.models["c_statistic"].fillna(1.0) >= min_c_statistic)
    if signals is None:
        signals = overview_signals(inputs, {})
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
                      min_c_statistic: float, stamp: str, phases: Phases | None = None,
                      workers: int | None = None, cache: MonitoringCache | None = None) -> list[Path]:
    """Write every package and the overview under ``folder``; return the files written.

    Packages are built by ``workers`` processes (default: orchestration/publish/workers.py);
    the files are the same whatever their number, and with or without the ``cache`` of the sites'
    CUSUM and VLAD charts (orchestration/publish/monitoring_cache.py), which is then left holding
    exactly this publication's charts.
    """
    from .workers import build_packages

    phases = phases if phases is not None else Phases()
    with phases("shared tables"):
        suppressed = suppress_results(inputs.results, threshold)
        tables = PeriodTables(inputs, suppressed)
    with phases("site reports"):
        peer_charts = prepare_peer_charts(inputs.results, inputs.funnel_curves, inputs.period, inputs.measures,
                                          small_cell_threshold=threshold, plot_suppressed_cells=False)
    sites = list(active_sites(inputs).itertuples())
    keys = monitoring_keys(inputs, cache, [site.site_id for site in sites]) if cache is not None else {}
    job = PackageJob(inputs, tables, peer_charts, sites, folder, registry_name, threshold, stamp, cache, keys)
    with phases("site packages (wall)"):
        written, signalled, done = build_packages(job, workers)
    phases.add(done)
    with phases("overview"):
        signals = overview_signals(inputs, signalled)
        written += build_overview(inputs, folder, registry_name, stamp, min_c_statistic, signals)
    if cache is not None:
        cache.keep_only(keys.values())
    return written


def monitoring_keys(inputs: PublicationInputs, cache: MonitoringCache, site_ids: list[str]) -> dict[str, str]:
    """The cache key of each site's charts (a site without a case fingerprint has none: always drawn)."""
    fingerprints = inputs.cases.fingerprints()
    labels = [(str(m), str(label)) for m, label in zip(inputs.measures["measure_id"], inputs.measures["label"])]
    return {site: cache.key(site, fingerprints[site], inputs.period, labels)
            for site in site_ids if site in fingerprints}


@dataclass
class PackageJob:
    """What every site's package is built from (shared with the worker processes)."""

    inputs: PublicationInputs
    tables: PeriodTables
    peer_charts: object
    sites: list                 # the active sites (rows of inputs.sites)
    folder: Path
    registry_name: str
    threshold: int
    stamp: str
    cache: MonitoringCache | None = None
    keys: dict[str, str] = field(default_factory=dict)      # site -> its charts' cache key

    def build(self, sites) -> tuple[list[Path], dict, Phases]:
        """The packages of ``sites``: files written, CUSUM signal rows, phases."""
        phases, signalled, written = Phases(), {}, []
        for site in sites:
            written += build_site_package(self.inputs, self.tables, self.peer_charts, site, self.folder,
                                          self.registry_name, self.threshold, self.stamp, phases, signalled,
                                          self.cache, self.keys.get(site.site_id))
        return written, signalled, phases
