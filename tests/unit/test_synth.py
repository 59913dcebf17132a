"""The synthetic collaborative: deterministic, honest about its truth, statistically sound."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from scipy import stats

from orchestration.registry import load_registry
from orchestration.settings import registry_dir
from orchestration.synth import design_terms, generate_collaborative
from orchestration.synth.__main__ import main as synth_main


@pytest.fixture(scope="module")
def registry():
    return load_registry(registry_dir())


@pytest.fixture(scope="module")
def small(registry, tmp_path_factory):
    """A default-roster collaborative with defects, for file-level checks."""
    out = tmp_path_factory.mktemp("small")
    return generate_collaborative(registry, out, cases=8000, seed=7)


@pytest.fixture(scope="module")
def large(registry, tmp_path_factory):
    """Enough cases for the statistics to be decisive."""
    out = tmp_path_factory.mktemp("large")
    result = generate_collaborative(registry, out, cases=50000, seed=11)
    return result, pd.read_parquet(out / "truth" / "cases.parquet")


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def read_rows(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> list[dict]:
    with open(path, encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def truth_csv(result, name: str) -> list[dict]:
    return read_rows(result.out_dir / "truth" / name)


def test_the_same_seed_writes_byte_identical_files_and_another_seed_does_not(registry, tmp_path):
    first = generate_collaborative(registry, tmp_path / "a", cases=3000, seed=5)
    generate_collaborative(registry, tmp_path / "b", cases=3000, seed=5)
    generate_collaborative(registry, tmp_path / "c", cases=3000, seed=6)
    assert any(p.suffix == ".xlsx" for p in first.landing_files)   # the workbook is covered too
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


def test_the_result_lists_every_file_written_and_the_manifest_counts_them(small):
    written = {p for p in small.out_dir.rglob("*") if p.is_file()}
    listed = {small.sites_file, *small.landing_files, *small.resubmission_files, *small.truth_files}
    assert written == listed
    manifest = json.loads((small.out_dir / "truth" / "manifest.json").read_text())
    assert manifest["counts"]["cases"] == 8000
    assert manifest["counts"]["landing_files"] == len(small.landing_files) == 48
    assert manifest["seed"] == 7


def test_columns_are_the_dictionary_names_and_values_look_like_a_real_submission(small, registry):
    ordinary = small.out_dir / "resubmissions"
    path = next(ordinary.rglob("*.csv"))
    rows = read_rows(path)
    assert list(rows[0]) == [v.name for v in registry.variables]
    site = path.parent.name
    assert all(r["site_id"] == site and r["case_id"].startswith(site + "-") for r in rows)
    assert all(r["medical_record_number"].isdigit() for r in rows)
    assert {r["sex"] for r in rows} <= {"F", "M", "U"}
    assert {r["emergency"] for r in rows} <= {"0", "1"}


def test_dates_are_in_order_and_each_operation_falls_in_its_period(large, registry):
    _, cases = large
    spans = {p.period: p for p in registry.periods}
    op = pd.to_datetime(cases.operation_date)
    assert (pd.to_datetime(cases.admission_date) <= op).all()
    assert (op <= pd.to_datetime(cases.discharge_date)).all()
    start = pd.to_datetime(cases.period.map(lambda p: spans[p].start))
    end = pd.to_datetime(cases.period.map(lambda p: spans[p].end))
    assert ((op >= start) & (op <= end)).all()
    assert cases.age_years.between(18, 95).all()
    assert not cases.duplicated(["site_id", "case_id"]).any()
    dead = cases.death_date.notna()
    assert (pd.to_datetime(cases.death_date[dead]) <= op[dead] + pd.Timedelta(days=30)).all()
    in_hospital = dead & (cases.death_date == cases.discharge_date)
    assert 0.4 < in_hospital.sum() / dead.sum() < 0.8


def test_every_injected_defect_is_recorded_and_really_is_in_the_file_at_its_row_and_field(small, registry):
    defects = truth_csv(small, "defects.csv")
    scenario = yaml.safe_load((registry.folder / "synth.yaml").read_text())
    assert {d["kind"] for d in defects} == set(scenario["defects"]["kinds"])
    assert 0.004 < len(defects) / 8000 < 0.012
    names = {v.name for v in registry.variables}
    files: dict[str, list[dict]] = {}
    for defect in defects:
        assert defect["field"] in names
        rows = files.setdefault(defect["file"], read_rows(small.out_dir / defect["file"]))
        row = rows[int(defect["row_number"]) - 1]
        assert row["case_id"] == defect["case_id"]
        assert row[defect["field"]] == defect["injected_value"]
        if defect["kind"] == "duplicate_case":
            assert rows[int(defect["row_number"]) - 2] == row
        else:
            assert defect["injected_value"] != defect["original_value"]
    # and nothing else differs from the truth: undamaged rows carry exactly the true case ids, in order
    for file, rows in files.items():
        ids = [r["case_id"] for r in rows]
        assert len(set(ids)) == len(ids) - sum(d["kind"] == "duplicate_case" for d in defects if d["file"] == file)


def test_the_resubmission_has_the_same_cases_with_every_defect_corrected(small):
    manifest = json.loads((small.out_dir / "truth" / "manifest.json").read_text())
    assert manifest["resubmissions"], "a designated site-period must be resubmitted"
    entry = manifest["resubmissions"][0]
    first = read_rows(small.out_dir / entry["replaces"])
    second = read_rows(small.out_dir / entry["file"])
    defects = [d for d in truth_csv(small, "defects.csv") if d["file"] == entry["replaces"]]
    assert len({d["kind"] for d in defects}) >= 4
    assert [r["case_id"] for r in second] == list(dict.fromkeys(r["case_id"] for r in first))
    by_id = {r["case_id"]: r for r in second}
    for defect in defects:
        if defect["kind"] != "duplicate_case":
            assert by_id[defect["case_id"]][defect["field"]] == defect["original_value"]
    damaged = {d["case_id"] for d in defects}
    undamaged = [r for r in first if r["case_id"] not in damaged]
    assert all(by_id[r["case_id"]] == r for r in undamaged)


def test_each_whole_file_problem_is_on_its_own_file_and_really_has_that_problem(small):
    import openpyxl

    problems = {p["kind"]: p for p in truth_csv(small, "file_problems.csv")}
    assert len(problems) == 7 and len({p["file"] for p in problems.values()}) == 7
    assert problems["missing_required_column"]["expected_outcome"] == "rejected"
    assert problems["wrong_site_id"]["expected_outcome"] == "rejected"
    assert all(p["expected_outcome"] == "loaded" for k, p in problems.items()
               if k not in ("missing_required_column", "wrong_site_id"))
    path = lambda kind: small.out_dir / problems[kind]["file"]  # noqa: E731

    assert path("semicolon_delimiter").read_text().splitlines()[0].count(";") > 40
    raw = path("latin1_encoding").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert any(ch in raw.decode("latin-1") for ch in "éëüåñøö")
    assert path("utf8_bom").read_bytes().startswith(b"\xef\xbb\xbf")
    header = path("alias_headers").read_text().splitlines()[0].split(",")
    assert {"MRN", "DOB", "Gender"} <= set(header)
    assert "asa_class" not in path("missing_required_column").read_text().splitlines()[0].split(",")
    book = openpyxl.load_workbook(path("xlsx_format"), read_only=True)
    assert book.properties.created.year == 2025
    assert next(book.worksheets[0].iter_rows(values_only=True))[0] == "case_id"
    wrong = read_rows(path("wrong_site_id"))
    assert {r["site_id"] for r in wrong} != {problems["wrong_site_id"]["site_id"]}
    assert len({r["site_id"] for r in wrong}) == 1


@pytest.mark.parametrize("measure", ["mortality_30d", "morbidity_30d"])
def test_a_logistic_fit_on_the_true_covariates_recovers_the_true_coefficients(large, registry, measure):
    result, cases = large
    truth = pd.read_csv(result.out_dir / "truth" / "coefficients.csv")
    truth = truth[truth.measure == measure].set_index("term")["value"]
    terms = design_terms(registry, measure)
    assert list(truth.index) == ["intercept", *terms]
    columns = {}
    for term in terms:
        name, _, level = term.partition("[")
        values = cases[name]
        columns[term] = (values.astype(str) == level[:-1]) if level else values
    design = sm.add_constant(pd.DataFrame(columns).astype(float)).rename(columns={"const": "intercept"})
    fit = sm.Logit(cases[f"y_{measure}"].astype(float), design,
                   offset=cases[f"effect_{measure}"]).fit(disp=0, maxiter=100)
    low, high = fit.conf_int(alpha=0.01).T.values
    misses = [t for t, lo, hi in zip(design.columns, low, high) if not lo <= truth[t] <= hi]
    assert len(misses) <= int(0.05 * len(design.columns)) + 1, misses


def test_evaluating_each_measure_event_sql_reproduces_the_generated_event(small, registry):
    cases_file = small.out_dir / "truth" / "cases.parquet"
    con = duckdb.connect()
    for measure in registry.measures:
        got = con.execute(f"select coalesce(cast(({measure.event}) as boolean), false) as e, y_{measure.id} as y "
                          f"from read_parquet(?)", [str(cases_file)]).df()
        assert (got.e == got.y).all(), measure.id
        assert got.y.sum() > 0
    eligible = pd.read_parquet(cases_file, columns=["wound_class", "denominator_ssi_30d", "denominator_mortality_30d"])
    assert (eligible.denominator_ssi_30d == (eligible.wound_class != "4")).all()
    assert eligible.denominator_mortality_30d.all()
    # and on a written clean file, typed by the dictionary
    resubmission = small.resubmission_files[0]
    types = {v.name: v.sql_type for v in registry.variables}
    relation = con.read_csv(str(resubmission), dtype=types)
    expected = con.execute("select case_id, y_morbidity_30d, y_mortality_30d from read_parquet(?)",
                           [str(cases_file)]).df().set_index("case_id")
    for measure in ("morbidity_30d", "mortality_30d"):
        event = registry.measure(measure).event
        got = con.sql(f"select case_id, coalesce(({event}), false) as e from relation").df().set_index("case_id")
        assert (got.e == expected.loc[got.index, f"y_{measure}"]).all()


def test_base_rates_are_realistic(large):
    _, cases = large
    rates = {m: cases[f"y_{m}"].mean() for m in ("mortality_30d", "morbidity_30d", "ssi_30d", "readmission_30d")}
    assert 0.012 <= rates["mortality_30d"] <= 0.032, rates
    assert 0.11 <= rates["morbidity_30d"] <= 0.19, rates
    assert 0.035 <= rates["ssi_30d"] <= 0.065, rates
    assert 0.065 <= rates["readmission_30d"] <= 0.105, rates
    assert (cases.y_ssi_30d <= cases.y_morbidity_30d).all()


def test_teaching_hospitals_treat_older_sicker_patients_and_volumes_vary_widely(large):
    result, cases = large
    roster = pd.read_csv(result.sites_file)
    cases = cases.merge(roster[["site_id", "peer_group"]], on="site_id")
    by_group = cases.groupby("peer_group")
    assert by_group.age_years.mean()["teaching"] > by_group.age_years.mean()["community"] + 3
    high_asa = cases.asa_class.isin(["4", "5"]).groupby(cases.peer_group).mean()
    assert high_asa["teaching"] > 1.5 * high_asa["community"]
    volumes = cases.site_id.value_counts()
    assert volumes.max() > 5 * volumes.min()


def _observed_expected(result, cases: pd.DataFrame, measure: str, site_id: str) -> tuple[int, float]:
    """O and E at a site, E from the true probabilities without the site effect."""
    site = cases[cases.site_id == site_id]
    p = site[f"p_{measure}"].clip(1e-12, 1 - 1e-12)
    baseline = 1 / (1 + np.exp(-(np.log(p / (1 - p)) - site[f"effect_{measure}"])))
    return int(site[f"y_{measure}"].sum()), float(baseline.sum())


@pytest.mark.parametrize("measure", ["mortality_30d", "morbidity_30d"])
def test_designated_outlier_sites_really_differ_from_what_their_case_mix_predicts(large, measure):
    result, cases = large
    effects = pd.read_csv(result.out_dir / "truth" / "site_effects.csv")
    designated = effects[effects.measure == measure].groupby("designation").site_id.first()
    observed, expected = _observed_expected(result, cases, measure, designated["high_outlier"])
    assert observed / expected > 1.5 and stats.poisson.sf(observed - 1, expected) < 0.01
    observed, expected = _observed_expected(result, cases, measure, designated["low_outlier"])
    assert observed / expected < 0.67 and stats.poisson.cdf(observed, expected) < 0.01
    trend = effects[(effects.measure == measure) & (effects.designation == "improving")].sort_values("period")
    assert trend.effect.is_monotonic_decreasing and trend.effect.iloc[0] > trend.effect.iloc[-1]


def test_labs_are_missing_more_often_for_low_risk_and_emergency_cases(large):
    _, cases = large
    low_risk = cases.asa_class.isin(["1", "2"])
    for lab in ("albumin", "creatinine"):
        missing = cases[f"missing_{lab}"]
        assert missing[low_risk].mean() > missing[~low_risk].mean() + 0.1
        assert missing[cases.emergency].mean() > missing[~cases.emergency].mean() + 0.05
        assert cases[lab].notna().all()   # the truth keeps the value the file leaves blank


def test_a_larger_roster_and_more_periods_are_generated_when_asked(registry, tmp_path):
    result = generate_collaborative(registry, tmp_path, cases=4000, sites=40, periods=6, seed=3, defects=False)
    roster = pd.read_csv(result.sites_file)
    assert list(roster.site_id[:2]) == ["S001", "S002"] and len(roster) == 40
    assert list(roster.columns) == ["site_id", "display_name", "region", "peer_group", "active_from", "active_to"]
    assert 0.15 <= (roster.peer_group == "teaching").mean() <= 0.35
    cases = pd.read_parquet(tmp_path / "truth" / "cases.parquet")
    assert sorted(cases.period.unique()) == ["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1", "2026Q2"]
    assert len(result.landing_files) == 240 and not result.resubmission_files
    assert result.counts["defects"] == 0 and result.counts["file_problems"] == 0


def test_the_command_line_writes_a_collaborative(tmp_path, capsys):
    assert synth_main(["--out", str(tmp_path), "--cases", "500", "--seed", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cases"] == 500 and (tmp_path / "truth" / "manifest.json").is_file()


def test_clean_cases_respect_the_dictionary_and_every_registry_rule(small, registry):
    """Only planted defects may raise data queries: the true values break no rule."""
    cases_file = str(small.out_dir / "truth" / "cases.parquet")
    cases = pd.read_parquet(cases_file)
    for variable in registry.variables:
        values = cases[variable.name]
        if variable.required:
            assert values.notna().all(), variable.name
        if variable.codes:
            assert set(values.dropna()) <= set(variable.codes), variable.name
        if variable.min is not None:
            assert values.dropna().between(variable.min, variable.max).all(), variable.name
    rules_file = registry.folder / "rules.yaml"
    rules = yaml.safe_load(rules_file.read_text())["rules"] if rules_file.is_file() else []
    con = duckdb.connect()
    for rule in rules:
        try:
            failing = con.execute(f"select count(*) from read_parquet(?) where {rule['fails_when']}",
                                  [cases_file]).fetchone()[0]
        except duckdb.BinderException:
            continue   # the rule needs a warehouse-only column (a pseudonym)
        assert failing == 0, rule["id"]
