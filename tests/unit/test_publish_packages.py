"""A built publication, read back as a site would read it: blinded, suppressed, the same however it is built.

The inputs are the sample collaborative of orchestration/reports/sample.py
(small sites, so that small cells occur), shaped as the publication asset
reads them from the warehouse. Every file of every package is read here
independently of the privacy checks (CSV with pandas, XLSX with openpyxl,
the report as text).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil

import duckdb
import openpyxl
import pandas as pd
import pytest

from orchestration.publish.inputs import CaseFile, PublicationInputs
from orchestration.publish.packages import PackageJob, build_publication
from orchestration.publish.privacy import privacy_problems
from orchestration.publish.release import file_checksums
from orchestration.publish.workers import build_packages
from orchestration.reports.sample import MEASURES, quarters, sample_cases, sample_quality, sample_results
from support import demo_registry

THRESHOLD = 10
SITES = [f"S{i:02d}" for i in range(12)]
PERIODS = quarters(2025, 4)


def sample_inputs(folder) -> PublicationInputs:
    results, curves = sample_results(SITES, PERIODS, cases_per_period=45.0, red_share=0.1, seed=4)
    results = results.sort_values(["site_id", "measure_id", "period"]).reset_index(drop=True)
    results["oe_change"] = results.groupby(["site_id", "measure_id"])["oe"].diff()
    cases = pd.concat([sample_cases(s, PERIODS, cases=160, seed=i).assign(site_id=s) for i, s in enumerate(SITES)])
    cases = cases.rename(columns={"case_key": "case_id"})[
        ["site_id", "case_id", "period", "operation_date", "measure_id", "is_event", "expected_probability"]]
    quality = pd.concat([sample_quality(s, PERIODS, results).assign(site_id=s) for s in SITES])
    codes = results.drop_duplicates("site_id").set_index("site_id")["blinded_code"]
    sites = pd.DataFrame({"site_id": SITES, "display_name": [f"Hospital of {s[1:]} Street" for s in SITES],
                          "blinded_code": [codes[s] for s in SITES]})
    models = pd.DataFrame({"measure_id": MEASURES["measure_id"], "model_version": "m.2025Q1-2025Q4.abc",
                           "cases": 1000, "events": 80, "c_statistic": 0.74, "calibration_intercept": 0.0,
                           "calibration_slope": 1.0, "hosmer_lemeshow_p": 0.4, "brier_score": 0.05,
                           "risk_adjusted": True})
    submissions = pd.DataFrame(columns=["site_id", "period", "submission_id", "file_checksum", "original_name"])
    return PublicationInputs(period=PERIODS[-1], results=results, funnel_curves=curves,
                             cases=CaseFile.of_frame(cases, folder / "cases"), quality=quality[["site_id", "period", "status",
                             "completeness", "open_queries", "blocking_open"]].reset_index(drop=True),
                             models=models, sites=sites, measures=MEASURES, submissions=submissions)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    inputs = sample_inputs(tmp_path_factory.mktemp("inputs"))
    folder = tmp_path_factory.mktemp("publication")
    build_publication(inputs, folder, "Test Collaborative", THRESHOLD, 0.6, "2025Q4 (data version abc)", workers=2)
    return inputs, folder


def _sheets(path) -> dict[str, pd.DataFrame]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        out = {}
        for sheet in book.worksheets:
            rows = list(sheet.iter_rows(values_only=True))
            out[sheet.title] = pd.DataFrame(rows[1:], columns=rows[0])
        return out
    finally:
        book.close()


def _tables(package) -> dict[str, pd.DataFrame]:
    tables = {p.name: pd.read_csv(p, dtype=str, keep_default_na=False) for p in package.glob("*.csv")}
    tables.update({f"package.xlsx:{name}": frame.astype(object).where(frame.notna(), "").astype(str)
                   for name, frame in _sheets(package / "package.xlsx").items()})
    return tables


def _text(path) -> str:
    if path.suffix == ".xlsx":
        return "\n".join(frame.to_csv(index=False) for frame in _sheets(path).values())
    return path.read_text(encoding="utf-8")


def test_every_active_site_gets_every_file_and_the_privacy_checks_pass(published):
    inputs, folder = published
    assert sorted(p.name for p in (folder / "sites").iterdir()) == SITES
    for package in (folder / "sites").iterdir():
        assert {p.name for p in package.iterdir()} == {"report.html", "my_results.csv", "comparison.csv",
                                                       "my_cases_with_events.csv", "data_quality.csv", "package.xlsx"}
    assert privacy_problems(folder, demo_registry(), inputs.sites, inputs.cases, set()) == []


def test_no_package_names_another_site_or_holds_its_cases(published):
    inputs, folder = published
    case_ids = inputs.cases.frame().groupby("site_id")["case_id"].agg(set)
    for package in (folder / "sites").iterdir():
        own = package.name
        others = inputs.sites[inputs.sites["site_id"] != own]
        foreign = set().union(*(case_ids[s] for s in others["site_id"]))
        for path in package.iterdir():
            text = _text(path)
            for site_id, name in zip(others["site_id"], others["display_name"]):
                assert not re.search(rf"(?<![A-Za-z0-9]){site_id}(?![A-Za-z0-9])", text), (path, site_id)
                assert name not in text, (path, name)
            assert not set(re.findall(r"S\d\d-\d{5}", text)) & foreign, path
        own_name = inputs.sites.set_index("site_id").loc[own, "display_name"]
        assert own_name in (package / "report.html").read_text(encoding="utf-8")
        events = pd.read_csv(package / "my_cases_with_events.csv", dtype=str)
        assert len(events) and set(events["case_id"]) <= case_ids[own]


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def test_no_count_from_1_to_the_threshold_and_none_recoverable_by_subtraction(published):
    inputs, folder = published
    label = f"<={THRESHOLD}"
    small = lambda v: v is not None and 1 <= v <= THRESHOLD   # noqa: E731
    seen_suppressed = 0
    for package in (folder / "sites").iterdir():
        for name, table in _tables(package).items():
            if "cases" not in table:
                continue
            for row in table.to_dict("records"):
                cases, observed = _number(row["cases"]), _number(row["observed"])
                assert not small(cases) and not small(observed), (package.name, name, row)
                if cases is not None and observed is not None:
                    assert not small(cases - observed), (package.name, name, row)   # non-events
                hidden = row["cases"] == label or row["observed"] in (label, "suppressed")
                seen_suppressed += hidden
                if hidden:   # O/E x expected = observed, rates x cases = events: all suppressed
                    for column in ("oe", "oe_lower_95", "oe_upper_95", "risk_standardised_rate",
                                   "reliability_adjusted_rate", "shrunken_oe"):
                        assert row[column] in ("suppressed", ""), (package.name, name, column, row)
                if row["cases"] == label:
                    assert row["expected"] in ("suppressed", ""), (package.name, name, row)
    assert seen_suppressed > 10, "the sample must exercise suppression"


def test_no_total_is_published_and_the_change_never_gives_back_a_suppressed_ratio(published):
    inputs, folder = published
    codes = set(inputs.sites["blinded_code"])
    for package in (folder / "sites").iterdir():
        comparison = pd.read_csv(package / "comparison.csv", dtype=str, keep_default_na=False)
        assert {s.removesuffix(" (you)") for s in comparison["site"]} <= codes   # a row per site, no totals
        assert len(comparison) == len(SITES) * len(MEASURES)
        assert (comparison["site"].str.endswith(" (you)")).sum() == len(MEASURES)
        mine = pd.read_csv(package / "my_results.csv", dtype=str, keep_default_na=False)
        assert len(mine) == len(PERIODS) * len(MEASURES)
        for _, rows in mine.sort_values(["measure_id", "period"]).groupby("measure_id"):
            previous = None
            for row in rows.to_dict("records"):
                if previous is not None and previous["oe"] == "suppressed":
                    assert row["oe_change"] in ("suppressed", ""), (package.name, row)
                previous = row


def test_the_files_are_the_same_with_one_or_several_worker_processes(published, tmp_path):
    inputs, folder = published
    single = tmp_path / "single"
    build_publication(inputs, single, "Test Collaborative", THRESHOLD, 0.6, "2025Q4 (data version abc)", workers=1)
    assert file_checksums(single) == file_checksums(folder)


class _Dies(PackageJob):
    def build(self, sites):
        if any(site.site_id == "S05" for site in sites):
            os._exit(9)   # a worker killed midway
        return [], {}, {}


def test_a_worker_that_dies_fails_the_build(published, tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    inputs, folder = published
    job = _Dies(inputs, None, None, [type("Site", (), {"site_id": s})() for s in SITES], tmp_path, "x", THRESHOLD,
                "stamp")
    with pytest.raises(BrokenProcessPool):
        build_packages(job, workers=2)


class _Recording:
    """A case file that records which sites' cases are read (and refuses to hand out every case)."""

    def __init__(self, cases: CaseFile):
        self.cases, self.sites = cases, []

    def site(self, site_id):
        self.sites.append(site_id)
        return self.cases.site(site_id)

    def frame(self):
        raise AssertionError("a publication must not read every case at once")

    def __getattr__(self, name):
        return getattr(self.cases, name)


def test_each_package_reads_only_its_own_sites_cases_once(published, tmp_path):
    inputs, folder = published
    recording = _Recording(inputs.cases)
    build_publication(dataclasses.replace(inputs, cases=recording), tmp_path / "p", "Test Collaborative", THRESHOLD,
                      0.6, "2025Q4 (data version abc)", workers=1)
    assert sorted(recording.sites) == SITES                    # one read per site, the overview reuses them
    assert file_checksums(tmp_path / "p") == file_checksums(folder)
    report = (folder / "sites" / "S03" / "report.html").read_text(encoding="utf-8")
    own = recording.cases.site("S03")
    assert len(own) and (own["case_id"].str[:3] == "S03").all() and "CUSUM" in report


def test_the_asset_checks_reuse_the_release_scan_only_while_no_file_changed(published, tmp_path):
    from orchestration.publish.publication import _remember, released_problems
    from orchestration.publish.release import INPUTS

    inputs, folder = published
    release = tmp_path / "release"
    shutil.copytree(folder, release)
    inputs.save(release / INPUTS)
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"create schema raw; create table raw.cases as select '{'ab' * 32}' as patient_key")
    remembered = (["remembered"], [], [])
    _remember(release, remembered)
    assert released_problems(release, demo_registry(), warehouse) == remembered
    other = inputs.sites.loc[inputs.sites["site_id"] == "S02", "display_name"].iloc[0]
    with open(release / "sites" / "S01" / "report.html", "a", encoding="utf-8") as handle:
        handle.write(f"<p>{other}</p><p>{'ab' * 32} {'cd' * 32}</p>")      # a patient key, and a hex that is not one
    kinds = released_problems(release, demo_registry(), warehouse)
    assert kinds == (["sites/S01/report.html reveals the name of site S02"],
                     ["sites/S01/report.html holds pseudonymised patient keys"], [])


def test_a_case_file_reads_each_sites_rows_back_in_order_wherever_it_lies(published, tmp_path):
    inputs, _ = published
    rows = inputs.cases.frame()
    moved = CaseFile.of_frame(rows.sample(frac=1, random_state=1), tmp_path / "St. Mary's data" / "cases")
    pd.testing.assert_frame_equal(moved.frame(), rows)
    for site in ("S00", "S07"):
        own = rows[rows["site_id"] == site].drop(columns="site_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(moved.site(site), own)
    assert moved.site_ids() == SITES and moved.site("nobody").empty


def test_no_case_file_connection_is_inherited_by_the_worker_processes(published):
    from orchestration.publish import inputs as module
    from orchestration.publish.workers import forked_map

    inputs, _ = published
    assert len(inputs.cases.site("S01"))           # the parent reads: its connection is open
    assert os.getpid() in module._READERS
    inherited = forked_map(lambda _: sorted(module._READERS), [1, 2], workers=2)
    assert inherited == [[], []] and module._READERS == {}
    assert len(inputs.cases.site("S01"))           # and opens a new one when it reads again


def _build_with(inputs, folder, cache, cases=None) -> tuple[list[str], object]:
    """Build with the monitoring cache; the sites whose cases were read, and the phases."""
    from orchestration.publish.timing import Phases

    recording, phases = _Recording(cases or inputs.cases), Phases()
    build_publication(dataclasses.replace(inputs, cases=recording), folder, "Test Collaborative", THRESHOLD, 0.6,
                      "2025Q4 (data version abc)", phases=phases, workers=1, cache=cache)
    return sorted(recording.sites), phases


def test_kept_charts_give_the_same_files_and_only_a_changed_sites_cases_are_read(published, tmp_path):
    from orchestration.publish.monitoring_cache import MonitoringCache

    inputs, folder = published
    cache = MonitoringCache(tmp_path / "cache")
    read, phases = _build_with(inputs, tmp_path / "first", cache)
    assert read == SITES and phases.counts["sites whose cases were read"] == len(SITES)
    assert file_checksums(tmp_path / "first") == file_checksums(folder)
    assert len(list((tmp_path / "cache").iterdir())) == len(SITES)

    read, phases = _build_with(inputs, tmp_path / "second", cache)
    assert read == [] and phases.counts["sites whose cases were read"] == 0
    assert file_checksums(tmp_path / "second") == file_checksums(folder)

    rows = inputs.cases.frame()   # one of S05's cases now had an event
    changed = rows.index[(rows["site_id"] == "S05") & ~rows["is_event"].astype(bool)][0]
    rows.loc[changed, "is_event"] = True
    cases = CaseFile.of_frame(rows, tmp_path / "changed")
    read, _ = _build_with(inputs, tmp_path / "third", cache, cases)
    assert read == ["S05"]
    build_publication(dataclasses.replace(inputs, cases=cases), tmp_path / "reference", "Test Collaborative",
                      THRESHOLD, 0.6, "2025Q4 (data version abc)", workers=1)
    assert file_checksums(tmp_path / "third") == file_checksums(tmp_path / "reference")
    assert file_checksums(tmp_path / "third") != file_checksums(folder)


def test_charts_are_drawn_again_when_a_label_changes_or_a_kept_entry_is_unreadable(published, tmp_path):
    from orchestration.publish.monitoring_cache import MonitoringCache

    inputs, _ = published
    cache = MonitoringCache(tmp_path / "cache")
    _build_with(inputs, tmp_path / "first", cache)
    entry = sorted((tmp_path / "cache").iterdir())[0]
    entry.write_bytes(b"not gzip")
    read, _ = _build_with(inputs, tmp_path / "second", cache)
    assert len(read) == 1
    relabelled = dataclasses.replace(inputs, measures=inputs.measures.assign(
        label=inputs.measures["label"] + " (renamed)"))
    read, _ = _build_with(relabelled, tmp_path / "third", cache)
    assert read == SITES
    report = (tmp_path / "third" / "sites" / "S01" / "report.html").read_text(encoding="utf-8")
    assert "(renamed)" in report and len(list((tmp_path / "cache").iterdir())) == len(SITES)
