"""The per-site feedback report and the coordinating-centre overview (pure rendering)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from orchestration.reports import prepare_peer_charts, render_overview, render_site_report
from orchestration.reports.display import cell, result_cells
from orchestration.reports.sample import complete_results, sample_cases
from orchestration.stats.spc import risk_adjusted_cusum

PERIODS = ["2025Q1", "2025Q2", "2025Q3"]
MEASURES = pd.DataFrame({"measure_id": ["mortality_30d", "ssi_30d"],
                         "label": ["30-day mortality", "Surgical site infection within 30 days"],
                         "direction": ["lower_is_better", "lower_is_better"]})
HOME = "HOME-SITE-01"
HOME_NAME = "Lakeshore University Hospital"
PEERS = {f"PEERSITE-{i:04d}": name for i, name in enumerate(
    ["Zanzibar Memorial Infirmary", "Quillfeather Regional", "Xanadu Valley Clinic", "Okapi Heights General",
     "Vortigern Saint Hospital", "Juniper Ridge Medical", "Yarrowmere Community"], start=1)}
DEVIANT = "PEERSITE-0002"
RED = "PEERSITE-0003"
THRESHOLD = 10


CODES = {HOME: "P-A1B2", **{s: f"P-{i:02d}C{i}" for i, s in enumerate(PEERS, start=10)}}


def _code(site_id: str) -> str:
    return CODES[site_id]


def build_inputs():
    """8 sites x 3 periods x 2 measures, written out by hand where it matters."""
    rng = np.random.default_rng(5)
    rows = []
    for site in [HOME, *PEERS]:
        for p_index, period in enumerate(PERIODS):
            for mid, rate in (("mortality_30d", 0.06), ("ssi_30d", 0.1)):
                cases = 150 + 20 * p_index + (40 if site == HOME else int(rng.integers(0, 60)))
                expected = cases * rate
                observed = float(rng.poisson(expected))
                if site == HOME and mid == "mortality_30d" and period == "2025Q3":
                    observed = round(expected * 2.2)          # the designated high outlier
                if site == HOME and mid == "ssi_30d" and period == "2025Q2":
                    observed = 7.0                             # a suppressed small cell
                if site == HOME and mid == "ssi_30d" and period == "2025Q3":
                    observed = 25.0
                rows.append({"site_id": site, "blinded_code": _code(site), "period": period, "measure_id": mid,
                             "measure_label": MEASURES.set_index("measure_id").loc[mid, "label"],
                             "direction": "lower_is_better", "cases": float(cases), "observed": observed,
                             "expected": expected,
                             "quality_status": "red" if site == RED and period == "2025Q3" else "green"})
    frame = pd.DataFrame(rows)
    frame["is_included"] = frame["quality_status"] != "red"
    results, curves = complete_results(frame)
    results["is_positive_deviant"] = False
    results.loc[(results["site_id"] == DEVIANT) & (results["period"] == "2025Q3")
                & (results["measure_id"] == "ssi_30d"), "is_positive_deviant"] = True
    cases = sample_cases(HOME, PERIODS, MEASURES, cases=600, odds={"mortality_30d": 3.0}, seed=3)
    quality = pd.DataFrame({"period": PERIODS, "status": ["green", "yellow", "green"],
                            "completeness": [0.99, 0.97, 0.985], "open_queries": [0, 14, 2],
                            "blocking_open": [0, 0, 0]})
    return results, curves, cases, quality


@pytest.fixture(scope="module")
def inputs():
    return build_inputs()


@pytest.fixture(scope="module")
def report(inputs):
    results, curves, cases, quality = inputs
    return render_site_report(HOME, HOME_NAME, "2025Q3", results, curves, cases, quality, MEASURES,
                              "General Surgery Quality Collaborative", small_cell_threshold=THRESHOLD,
                              generated_at="2026-03-16 09:00 UTC")


class Tables(HTMLParser):
    """Cell texts of every table, by the table's class, and every svg's attributes."""

    def __init__(self):
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.svgs: list[dict] = []
        self.circles: list[tuple[dict, dict]] = []
        self._cell = None
        self._svg = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append((a.get("class", ""), []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg":
            self._svg = a
            self.svgs.append(a)
        elif tag == "circle" and self._svg is not None:
            self.circles.append((self._svg, a))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "svg":
            self._svg = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Tables:
    p = Tables()
    p.feed(html)
    return p


def sections(html: str) -> dict[str, str]:
    out = {}
    for match in re.finditer(r'<section class="card measure" id="m-[^"]+" data-measure="([^"]+)">(.*?)</section>',
                             html, re.S):
        out[match.group(1)] = match.group(2)
    return out


def test_the_site_report_is_one_self_contained_file(report):
    assert report.lstrip().startswith("<!DOCTYPE html>")
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "<img", "<iframe", "//fonts"):
        assert forbidden not in report
    assert not re.search(r"\bsrc\s*=", report)
    assert not re.search(r"url\((?!#)", report), "only in-document url(#id) references are allowed"
    assert "<style>" in report


def test_every_chart_is_present_for_every_measure_with_a_title_and_a_size(report):
    found = sections(report)
    assert set(found) == set(MEASURES["measure_id"])
    for measure_id, body in found.items():
        charts = re.findall(r'<svg [^>]*data-chart="([a-z]+)"', body)
        assert sorted(charts) == ["caterpillar", "cusum", "funnel", "trend", "vlad"], measure_id
    for svg in parse(report).svgs:
        assert svg["role"] == "img" and float(svg["width"]) > 0 and float(svg["height"]) > 0
    assert report.count('data-chart="') == report.count("<title id=")


def test_peers_appear_only_by_blinded_code(report, inputs):
    for site_id, name in PEERS.items():
        assert site_id not in report
        assert name not in report
        assert name.split()[0] not in report
    assert HOME_NAME in report
    # peers are there, by code: as hover titles on the funnel plots
    assert f"<title>{_code('PEERSITE-0005')}</title>" in report


def test_no_count_from_1_to_the_threshold_is_printed_in_the_results_tables(report, inputs):
    tables = [rows for css, rows in parse(report).tables if "results" in css.split()]
    assert len(tables) == 1 + len(MEASURES)            # at-a-glance + one per measure
    for rows in tables:
        for row in rows:
            for text in row:
                bare = text.replace(",", "")
                if re.fullmatch(r"\d+", bare):
                    assert not 1 <= int(bare) <= THRESHOLD, (row, text)
    # the small cell (7 infections in 2025Q2) shows as <=10 and its O/E and rates are suppressed
    results = inputs[0]
    ssi = sections(report)["ssi_30d"]
    row = next(r for r in parse(ssi).tables[0][1] if r and r[0] == "2025Q2")
    assert row[2] == "≤10"
    assert row[4] == row[5] == row[6] == row[7] == row[8] == "suppressed"
    small = results[(results["site_id"] == HOME) & (results["measure_id"] == "ssi_30d")
                    & (results["period"] == "2025Q2")].iloc[0]
    assert f"{small['oe']:.2f}" not in ssi
    assert f"{100 * small['observed_rate']:.1f}%" not in ssi
    # the change into 2025Q3 would give back the suppressed O/E: it is suppressed too
    current = next(r for r in parse(ssi).tables[0][1] if r and r[0] == "2025Q3")
    assert current[-1] == "suppressed" and current[4] != "suppressed"


def test_the_summary_flags_the_high_outlier_and_names_the_positive_deviant(report, inputs):
    results = inputs[0]
    mine = results[(results["site_id"] == HOME) & (results["measure_id"] == "mortality_30d")
                   & (results["period"] == "2025Q3")].iloc[0]
    assert mine["outlier_status"] == "high"
    summary = report[report.index('id="summary"'):report.index('id="glance"')]
    expected = (f"Your 30-day mortality was higher than expected (O/E {mine['oe']:.2f}, 95% CI "
                f"{mine['oe_lower_95']:.2f}–{mine['oe_upper_95']:.2f}), outside the 99.8% limit.")
    assert expected in summary
    assert 'class="concern"' in summary
    assert re.search(rf"surgical site infection within 30 days: peer {re.escape(_code(DEVIANT))}", summary)


def test_a_cusum_signal_in_the_period_is_reported_and_drawn(report, inputs):
    cases = inputs[2]
    mine = cases[cases["measure_id"] == "mortality_30d"].sort_values(["operation_date", "case_key"])
    chart = risk_adjusted_cusum(mine["is_event"].astype(float), mine["expected_probability"], odds_ratio=2.0,
                                h=4.5, reset=True)
    in_period = chart["signal"].to_numpy() & (mine["period"].to_numpy() == "2025Q3")
    assert chart["signal"].any(), "fixture: odds x3 must make the CUSUM signal"
    body = sections(report)["mortality_30d"]
    drawn = re.search(r'<svg [^>]*data-chart="cusum".*?</svg>', body, re.S).group(0)
    assert drawn.count('class="signal-high"') == int(chart["signal"].sum())
    summary = report[report.index('id="summary"'):report.index('id="glance"')]
    assert ("CUSUM for 30-day mortality signalled" in summary) == bool(in_period.any())


def test_the_site_point_on_the_funnel_maps_back_to_its_oe_and_expected(report, inputs):
    results = inputs[0]
    mine = results[(results["site_id"] == HOME) & (results["measure_id"] == "mortality_30d")
                   & (results["period"] == "2025Q3")].iloc[0]
    parsed = parse(sections(report)["mortality_30d"])
    svg, circle = next((s, c) for s, c in parsed.circles
                       if s["data-chart"] == "funnel" and c.get("data-role") == "site")
    x0, y0, x1, y1 = map(float, svg["data-plot"].split())
    xlo, xhi = map(float, svg["data-x-domain"].split())
    ylo, yhi = map(float, svg["data-y-domain"].split())
    oe = ylo + (y1 - float(circle["cy"])) / (y1 - y0) * (yhi - ylo)
    expected = xlo + (float(circle["cx"]) - x0) / (x1 - x0) * (xhi - xlo)
    pixel_oe = (yhi - ylo) / (y1 - y0)                 # one pixel in O/E units
    assert abs(oe - mine["oe"]) <= 0.06 * pixel_oe + 1e-9
    assert abs(expected - mine["expected"]) <= 0.06 * (xhi - xlo) / (x1 - x0) + 1e-9
    assert ylo <= mine["oe"] <= yhi


def test_a_red_period_says_data_not_included_and_why(inputs):
    results, curves, _, _ = inputs
    quality = pd.DataFrame({"period": PERIODS, "status": ["green", "green", "red"],
                            "completeness": [0.99, 0.99, 0.82], "open_queries": [0, 3, 40],
                            "blocking_open": [0, 0, 17]})
    html = render_site_report(RED, PEERS[RED], "2025Q3", results, curves, None, quality, MEASURES, "Registry",
                              generated_at="x")
    assert "Data not included." in html
    assert "17 blocking data queries open" in html and "completeness 82.0%" in html
    assert 'data-role="site"' not in html                     # nothing of a red period is plotted
    others = [s for s in PEERS if s != RED] + [HOME]
    assert not any(s in html for s in others)


def test_the_output_is_reproducible_and_the_peer_layer_can_be_built_once(inputs, report):
    results, curves, cases, quality = inputs
    peer = prepare_peer_charts(results, curves, "2025Q3", MEASURES, small_cell_threshold=THRESHOLD)
    again = render_site_report(HOME, HOME_NAME, "2025Q3", results, curves, cases, quality, MEASURES,
                               "General Surgery Quality Collaborative", small_cell_threshold=THRESHOLD,
                               generated_at="2026-03-16 09:00 UTC", peer_charts=peer)
    assert again == report


def test_suppressed_peers_can_be_left_off_the_charts(inputs):
    results, curves, cases, quality = inputs
    now = results[(results["period"] == "2025Q3") & (results["measure_id"] == "mortality_30d")
                  & results["is_included"]]
    shown = [r for r in now.to_dict("records") if not cell(r, THRESHOLD).derived_hidden]
    assert 0 < len(shown) < len(now), "fixture: some mortality cells are suppressed, some not"
    html = render_site_report(HOME, HOME_NAME, "2025Q3", results, curves, cases, quality, MEASURES, "Registry",
                              generated_at="x", plot_suppressed_cells=False)
    funnel = re.search(r'<svg [^>]*data-chart="funnel".*?</svg>', sections(html)["mortality_30d"], re.S).group(0)
    assert funnel.count('class="peer"') == len(shown)
    trend = re.search(r'<svg [^>]*data-chart="trend".*?</svg>', sections(html)["ssi_30d"], re.S).group(0)
    mine = results[(results["site_id"] == HOME) & (results["measure_id"] == "ssi_30d")]
    visible = sum(not cell(r, THRESHOLD).derived_hidden for r in mine.to_dict("records"))
    assert visible < len(PERIODS)
    assert trend.count('<circle class="point') == visible
    assert trend.count(">suppressed</text>") == len(PERIODS) - visible                  # 2025Q2 at least


@pytest.mark.parametrize("cases,observed,shown_cases,shown_observed,oe_shown", [
    (150, 0, "150", "0", True),
    (150, 11, "150", "11", True),
    (150, 10, "150", "≤10", False),
    (150, 1, "150", "≤10", False),
    (150, 145, "150", "suppressed", False),       # 5 non-events are the small cell
    (9, 0, "≤10", "0", False),
    (9, 3, "≤10", "≤10", False),
])
def test_the_display_rule_hides_small_cells_and_what_gives_them_back(cases, observed, shown_cases, shown_observed,
                                                                      oe_shown):
    row = {"is_included": True, "cases": cases, "observed": observed, "expected": 12.0, "oe": observed / 12,
           "oe_lower_95": 0.1, "oe_upper_95": 2.0, "oe_lower_998": 0.05, "oe_upper_998": 3.0,
           "observed_rate": observed / cases, "risk_standardised_rate": 0.05, "reliability_adjusted_rate": 0.05,
           "shrunken_oe": 1.0, "reliability": 0.5, "percentile_rank": 40.0, "outlier_status": "as_expected"}
    shown = result_cells(row, 10)
    assert (shown["cases"], shown["observed"]) == (shown_cases, shown_observed)
    hidden = {shown[k] for k in ("oe", "ci95", "ci998", "observed_rate", "rsr", "rar", "shrunken")}
    assert (hidden != {"suppressed"}) == oe_shown
    assert (shown["expected"] == "suppressed") == (cases <= 10)


def test_the_overview_names_every_site_and_who_needs_a_conversation(inputs):
    results, curves, _, _ = inputs
    quality_all = pd.DataFrame([{"site_id": s, "period": p, "status": "red" if (s == RED and p == "2025Q3") else
                                 "green", "completeness": 0.98, "open_queries": 9 if s == DEVIANT else 1,
                                 "blocking_open": 6 if s == DEVIANT else 0}
                                for s in [HOME, *PEERS] for p in PERIODS])
    model_quality = pd.DataFrame({"measure_id": ["mortality_30d", "ssi_30d"], "model_version": ["m1", "s1"],
                                  "cases": [9000, 9000], "events": [540, 900], "c_statistic": [0.8421, 0.7012],
                                  "calibration_intercept": [0.01, -0.02], "calibration_slope": [0.97, 1.04],
                                  "hosmer_lemeshow_p": [0.31, 0.02], "brier_score": [0.05, 0.08],
                                  "passed": [True, False]})
    signals = pd.DataFrame({"site_id": ["PEERSITE-0004"], "measure_id": ["ssi_30d"],
                            "direction": ["worse"], "months": ["August 2025"]})
    names = {HOME: HOME_NAME, **PEERS}
    html = render_overview("2025Q3", results, quality_all, model_quality, None, "Registry", site_names=names,
                           measures=MEASURES, funnel_curves=curves, cusum_signals=signals, generated_at="x")
    assert "http" not in html and "<script" not in html
    for site_id, name in names.items():
        assert name in html and _code(site_id) in html
    talk = html[html.index('id="conversation"'):html.index('id="quality"')]
    assert HOME_NAME in talk and "Higher than expected: 30-day mortality" in talk
    assert PEERS[RED] in talk and "Data-quality status red" in talk
    assert PEERS[DEVIANT] in talk and "6 blocking queries open" in talk
    assert PEERS["PEERSITE-0004"] in talk and "CUSUM signal" in talk
    models = html[html.index('id="models"'):html.index('id="results"')]
    assert "0.842" in models and "Failed" in models
    deviants = html[html.index('id="deviants"'):]
    assert PEERS[DEVIANT] in deviants
    assert html.count('data-chart="funnel"') == len(MEASURES)


def _column_extents(xs, ys, grid, column):
    """Lowest and highest point of the line through (xs, ys) within each column, sampled on ``grid``
    (every original x and every column edge: a straight segment's extremes are at its ends)."""
    values = np.interp(grid, xs, ys)
    columns = np.floor((grid - grid[0]) / column).astype(int)
    frame = pd.DataFrame({"column": columns, "value": values})
    return frame.groupby("column")["value"].agg(["min", "max"])


@pytest.mark.parametrize("seed, n, width", [(0, 14_000, 484), (1, 3_000, 484), (2, 200, 484), (3, 50_000, 100)])
def test_a_long_line_keeps_only_the_points_that_draw_it_and_covers_the_same_span_in_every_column(seed, n, width):
    from orchestration.reports.charts import LINE_COLUMN, line_points

    rng = np.random.default_rng(seed)
    xs = 58 + np.arange(1, n + 1) * width / (n + 1)
    ys = 160 + np.cumsum(rng.normal(0, 1, n))
    kept = line_points(xs, ys)
    assert kept[0] == 0 and kept[-1] == n - 1 and (np.diff(kept) > 0).all()
    edges = xs[0] + LINE_COLUMN * np.arange(0, int((xs[-1] - xs[0]) / LINE_COLUMN) + 1)
    grid = np.unique(np.concatenate([xs, edges]))
    full = _column_extents(xs, ys, grid, LINE_COLUMN)
    thinned = _column_extents(xs[kept], ys[kept], grid, LINE_COLUMN)
    pd.testing.assert_frame_equal(thinned, full, check_exact=False, rtol=0, atol=1e-9)
    columns = np.ceil((xs[-1] - xs[0]) / LINE_COLUMN)
    assert len(kept) <= min(n, 4 * columns)
    if n / columns > 8:
        assert len(kept) < n / 2      # dense lines lose most of their points


def test_the_cusum_and_vlad_charts_draw_the_thinned_lines():
    from orchestration.reports.charts import cusum_chart, vlad_chart

    rng = np.random.default_rng(5)
    n = 14_000
    upper = np.maximum.accumulate(np.abs(np.cumsum(rng.normal(0, 0.1, n))))
    lower = -upper / 2
    cusum = cusum_chart(upper, lower, h=4.5, boundaries=[(0, "2025Q1")], title="t", desc="d", uid="c")
    vlad = vlad_chart(np.cumsum(rng.normal(0, 0.1, n)), boundaries=[(0, "2025Q1")], title="t", desc="d", uid="v")
    for svg, css in ((cusum, "cusum-up"), (cusum, "cusum-down"), (vlad, "vlad-line")):
        path = re.search(rf'class="{css}" d="([^"]*)"', svg).group(1)
        vertices = path.count("L") + 1
        assert 2 < vertices < n / 2, (css, vertices)
