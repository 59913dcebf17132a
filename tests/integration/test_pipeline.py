"""The whole graph, materialised in-process on a small generated collaborative."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Generate 3,000 cases, drop the files in landing, run the cycle job once."""
    root = tmp_path_factory.mktemp("pipeline")
    env = {"CQI_DATA_DIR": str(root / "data"), "CQI_PSEUDONYM_SECRET": "integration-secret"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from orchestration.cycle import run_cycle
        from orchestration.registry import load_registry
        from orchestration.settings import paths, registry_dir
        from orchestration.synth import generate_collaborative

        registry = load_registry(registry_dir())
        source = root / "source"
        generate_collaborative(registry, source, cases=3000, seed=7)
        folders = paths().ensure()
        shutil.copytree(source / "landing", folders.landing, dirs_exist_ok=True)
        outcome = run_cycle()
        yield registry, folders, source, outcome
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def warehouse_query(folders, sql):
    with duckdb.connect(str(folders.warehouse), read_only=True) as con:
        return con.execute(sql).df()


def test_the_cycle_run_succeeds_and_every_file_gets_a_receipt(pipeline):
    registry, folders, source, outcome = pipeline
    assert outcome.success, (outcome.failed_steps, outcome.failed_checks)
    sent = [p for p in (source / "landing").rglob("*") if p.is_file()]
    ledger = warehouse_query(folders, "select original_name, status from intake.submissions")
    assert sorted(ledger.original_name) == sorted(p.name for p in sent)
    assert len(list(folders.receipts.rglob("*.json"))) == len(sent)
    assert not any(p.is_file() for p in folders.landing.rglob("*")), "received files leave the landing zone"


def test_problem_files_end_in_the_receipt_the_truth_expects(pipeline):
    registry, folders, source, outcome = pipeline
    problems = pd.read_csv(source / "truth" / "file_problems.csv")
    ledger = warehouse_query(folders, "select original_name, status from intake.submissions")
    status = dict(zip(ledger.original_name, ledger.status))
    for problem in problems.itertuples():
        got = status[Path(problem.file).name]
        expected = "rejected" if problem.expected_outcome == "rejected" else got
        assert got == expected and (problem.expected_outcome == "rejected") == (got == "rejected"), problem


def test_observed_events_in_the_mart_match_the_truth_for_clean_site_periods(pipeline):
    registry, folders, source, outcome = pipeline
    truth = pd.read_parquet(source / "truth" / "cases.parquet")
    defects = pd.read_csv(source / "truth" / "defects.csv")
    problems = pd.read_csv(source / "truth" / "file_problems.csv")
    touched = set(zip(defects.site_id, defects.period)) | set(zip(problems.site_id, problems.period))
    mart = warehouse_query(folders, "select * from marts.mart_site_results where is_included")
    checked = 0
    for row in mart.itertuples():
        if (row.site_id, row.period) in touched:
            continue  # a defect or a file problem changes what was loaded
        cases = truth[(truth.site_id == row.site_id) & (truth.period == row.period)]
        counted = cases[cases[f"denominator_{row.measure_id}"]]
        assert row.cases == len(counted), row
        assert row.observed == int(counted[f"y_{row.measure_id}"].sum()), row
        checked += 1
    assert checked >= 10


def test_each_active_site_gets_a_package_naming_only_itself(pipeline):
    registry, folders, source, outcome = pipeline
    release = folders.publish / "latest"
    packages = sorted(p for p in (release / "sites").iterdir())
    submitting = {p.parent.name for p in (source / "landing").rglob("*") if p.is_file()}
    assert {p.name for p in packages} <= submitting and len(packages) >= len(submitting) - 1
    names = {s.site_id: s.display_name for s in registry.sites}
    for package in packages:
        assert {p.name for p in package.iterdir()} == {
            "report.html", "my_results.csv", "comparison.csv", "my_cases_with_events.csv", "data_quality.csv",
            "package.xlsx"}
        for path in package.glob("*.csv"):
            text = path.read_text()
            for other, name in names.items():
                if other != package.name:
                    assert other not in text and name not in text, f"{path} reveals {other}"
            table = pd.read_csv(path, dtype=str)
            for column in ("cases", "observed"):
                if column in table:
                    numeric = pd.to_numeric(table[column], errors="coerce")
                    assert not ((numeric >= 1) & (numeric <= registry.policy.small_cell_threshold)).any()


def test_the_manifest_lists_submissions_models_and_a_checksum_for_every_file(pipeline):
    import hashlib
    import json

    registry, folders, source, outcome = pipeline
    release = (folders.publish / "latest").resolve()
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["registry"]["version"] == registry.version
    assert {m["measure_id"] for m in manifest["models"]} == {m.id for m in registry.measures}
    assert manifest["submissions"] and all(len(s["file_checksum"]) == 64 for s in manifest["submissions"])
    published = {str(p.relative_to(release)) for p in release.rglob("*")
                 if p.is_file() and p.name != "manifest.json" and "inputs" not in p.parts}
    assert set(manifest["files"]) == published
    for name, checksum in manifest["files"].items():
        assert hashlib.sha256((release / name).read_bytes()).hexdigest() == checksum


def test_no_direct_identifier_reaches_any_warehouse_table(pipeline):
    registry, folders, source, outcome = pipeline
    sent = pd.concat([pd.read_csv(p, dtype=str, sep=None, engine="python", encoding="latin-1")
                      for p in (source / "landing").rglob("*.csv")], ignore_index=True)
    sent.columns = [c.lower().lstrip("\ufeff").lstrip("ï»¿") for c in sent.columns]
    identifiers = set()
    for column in ("medical_record_number", "patient_name"):
        if column in sent:
            identifiers |= set(sent[column].dropna())
    assert len(identifiers) > 100
    with duckdb.connect(str(folders.warehouse), read_only=True) as con:
        tables = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                             "where data_type = 'VARCHAR'").fetchall()
        for schema, table, column in tables:
            values = {r[0] for r in con.execute(f'select distinct "{column}" from "{schema}"."{table}"').fetchall()}
            leaked = values & identifiers
            assert not leaked, f"{schema}.{table}.{column} holds identifiers such as {sorted(leaked)[:3]}"


def test_dagster_definitions_validate():
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run([str(dagster), "definitions", "validate", "-m", "orchestration.definitions"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_sql_scoring_in_the_warehouse_equals_scoring_from_the_stored_coefficients(pipeline):
    from orchestration.stats import score

    registry, folders, source, outcome = pipeline
    with duckdb.connect(str(folders.warehouse), read_only=True) as con:
        versions = con.execute("select measure_id, model_version from models.model_versions where is_current").fetchall()
        assert len(versions) == len(registry.measures)
        for measure_id, version in versions:
            coefficients = con.execute("select * from models.coefficients where model_version = ?", [version]).df()
            scored = con.execute(
                "select r.expected_probability, c.* from marts.fct_case_risk r "
                "join staging.stg_registry__cases c using (site_id, case_id) where r.measure_id = ?",
                [measure_id]).df()
            assert len(scored) > 1000
            independent = score(scored, coefficients).to_numpy()
            assert abs(independent - scored["expected_probability"].to_numpy()).max() < 1e-9, measure_id


def test_site_results_expected_counts_add_up_to_the_case_probabilities(pipeline):
    registry, folders, source, outcome = pipeline
    mart = warehouse_query(folders, "select site_id, period, measure_id, expected, observed from marts.mart_site_results "
                                    "where is_included")
    cases = warehouse_query(folders, "select site_id, period, measure_id, sum(expected_probability) as expected, "
                                     "count(*) filter (where is_event) as observed from marts.fct_case_risk group by all")
    merged = mart.merge(cases, on=["site_id", "period", "measure_id"], suffixes=("", "_cases"))
    assert len(merged) == len(mart) > 0
    assert (merged["expected"] - merged["expected_cases"]).abs().max() < 1e-9
    assert (merged["observed"] == merged["observed_cases"]).all()


def test_a_release_rebuilds_byte_for_byte_from_the_inputs_its_manifest_records(pipeline):
    from orchestration.publish.reproduce import verify

    registry, folders, source, outcome = pipeline
    assert verify((folders.publish / "latest").resolve(), registry) == []


def test_a_publication_copies_only_the_cases_of_sites_that_changed_since_the_last_release(pipeline, tmp_path):
    from orchestration.publish.publication import publish_period
    from orchestration.publish.reproduce import verify
    from orchestration.settings import Paths

    registry, folders, source, outcome = pipeline
    copy = Paths(tmp_path / "data")
    shutil.copytree(folders.data_dir, copy.data_dir, symlinks=True)
    first = (copy.publish / "latest").resolve()
    with duckdb.connect(str(copy.warehouse)) as con:     # one case of one site changes its risk
        site, case = con.execute("select site_id, min(case_id) from marts.fct_case_risk group by 1 "
                                 "order by 1 limit 1").fetchone()
        con.execute("update marts.fct_case_risk set expected_probability = expected_probability / 2 "
                    "where site_id = ? and case_id = ?", [site, case])
    second = publish_period(registry, copy, None, "second-publication").release

    def files(release):
        return {p.relative_to(release / "inputs" / "cases"): p.stat().st_ino
                for p in (release / "inputs" / "cases").glob("site_id=*/*.parquet")}

    before, after = files(first), files(second)
    assert set(before) == set(after) and len(after) > 2
    copied = {p.parts[0] for p in after if after[p] != before[p]}
    assert copied == {f"site_id={site}"}, "only the changed site's cases are copied; the others are linked"
    assert verify(second, registry) == []                # and the release still rebuilds byte for byte


def test_a_publication_killed_midway_leaves_the_previous_release_intact(pipeline, tmp_path):
    """SIGKILL `cqi publish` at several points; the released folder is always complete and verifiable."""
    import json
    import random
    import signal
    import time

    from orchestration.publish.release import file_checksums

    registry, folders, source, outcome = pipeline
    data = tmp_path / "data"
    shutil.copytree(folders.data_dir, data, symlinks=True)
    env = {**os.environ, "CQI_DATA_DIR": str(data)}
    cqi = str(Path(sys.executable).parent / "cqi")
    previous = (data / "publish" / "latest").resolve()
    rng = random.Random(5)
    for trial in range(2):
        process = subprocess.Popen([cqi, "publish"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        time.sleep(rng.uniform(3.0, 10.0))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        current = (data / "publish" / "latest").resolve()
        manifest = json.loads((current / "manifest.json").read_text())
        assert file_checksums(current) == manifest["files"], f"trial {trial}: {current} is incomplete"
        assert previous.is_dir() and file_checksums(previous)
    finished = subprocess.run([cqi, "publish"], env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    rebuilt = (data / "publish" / "latest").resolve()
    assert file_checksums(rebuilt) == file_checksums(previous)   # converges to the uninterrupted result


def test_cqi_sql_answers_from_the_analyst_copy_and_refuses_writes(pipeline):
    registry, folders, source, outcome = pipeline
    cqi = str(Path(sys.executable).parent / "cqi")
    env = {**os.environ, "CQI_DATA_DIR": str(folders.data_dir)}
    answer = subprocess.run([cqi, "sql", "select count(distinct measure_id) as measures from marts.mart_site_results"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0 and answer.stdout.split()[-1] == str(len(registry.measures)), answer.stderr
    for statement in ("drop table marts.mart_site_results", "select 1; delete from marts.fct_case_risk",
                      "insert into marts.mart_site_results select * from marts.mart_site_results"):
        refused = subprocess.run([cqi, "sql", statement], env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "read-only" in refused.stderr, statement


def test_a_new_analyst_copy_does_not_disturb_a_reader_of_the_previous_one(pipeline):
    from orchestration.publish.analyst_copy import publish_analyst_copy

    registry, folders, source, outcome = pipeline
    before = (folders.analyst / "latest").resolve()
    with duckdb.connect(str(before / "analyst.duckdb"), read_only=True) as reader:
        rows = reader.execute("select count(*) from marts.mart_site_results").fetchone()[0]
        after = publish_analyst_copy(folders.warehouse, folders.analyst, "test-refresh")
        assert (folders.analyst / "latest").resolve() == after != before
        assert reader.execute("select count(*) from marts.mart_site_results").fetchone()[0] == rows
    with duckdb.connect(str(after / "analyst.duckdb"), read_only=True) as fresh:
        assert fresh.execute("select count(*) from marts.mart_site_results").fetchone()[0] == rows
    assert pd.read_parquet(after / "mart_site_results.parquet").shape[0] == rows


def test_dbt_unit_tests_ran_in_the_cycle_as_passing_asset_checks_on_their_models(pipeline):
    import dagster as dg

    from orchestration.defs.warehouse.unit_tests import CHECK_PREFIX, unit_tests_by_model
    from orchestration.instance import prepare_dagster_home

    registry, folders, source, outcome = pipeline
    expected = {(model, f"{CHECK_PREFIX}{test}") for model, tests in unit_tests_by_model().items() for test, _ in tests}
    assert len(expected) >= 2
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        evaluations = [e.dagster_event.event_specific_data for e in instance.all_logs(
            outcome.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    seen = {(e.asset_key.path[-1], e.check_name): e.passed for e in evaluations}
    assert {key: seen.get(key) for key in expected} == {key: True for key in expected}


def test_a_failing_dbt_unit_test_fails_its_blocking_check_with_dbt_s_diff(pipeline, tmp_path):
    import dagster as dg
    from dagster_dbt import DbtCliResource

    from orchestration.defs.resources import CqiResource
    from orchestration.defs.warehouse.dbt_assets import DBT_EXECUTABLE, mart_models, warehouse_models
    from orchestration.defs.warehouse.unit_tests import UNIT_TEST_CHECKS

    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    marts_yml = project / "models" / "marts" / "_marts__models.yml"
    text = marts_yml.read_text()
    assert "linear_predictor: 0.75}" in text
    marts_yml.write_text(text.replace("linear_predictor: 0.75}", "linear_predictor: 0.8}"))   # a wrong expectation
    keys = [key for check in UNIT_TEST_CHECKS for key in check.check_keys]
    result = dg.materialize(
        [warehouse_models, mart_models, *UNIT_TEST_CHECKS], selection=dg.AssetSelection.checks(*keys),
        resources={"dbt": DbtCliResource(project_dir=str(project), profiles_dir=str(project),
                                         dbt_executable=DBT_EXECUTABLE), "cqi": CqiResource()},
        raise_on_error=False)
    outcome = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = outcome["unit_test_cases_are_scored_from_the_current_stored_coefficients"]
    assert not failed.passed and failed.asset_key == dg.AssetKey(["marts", "fct_case_risk"])
    assert "differs from" in failed.metadata["message"].value and "\x1b[" not in failed.metadata["message"].value
    assert outcome["unit_test_red_site_periods_and_excluded_cases_do_not_count"].passed
    assert not result.success, "a failed blocking check fails its step, so nothing downstream runs"


def test_unit_tests_that_passed_with_the_same_code_are_not_run_again_and_an_edit_runs_them(pipeline, tmp_path):
    import dagster as dg
    from dagster_dbt import DbtCliResource

    from orchestration.defs.resources import CqiResource
    from orchestration.defs.warehouse.dbt_assets import DBT_EXECUTABLE, mart_models, warehouse_models
    from orchestration.defs.warehouse.unit_tests import UNIT_TEST_CHECKS

    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    keys = [key for check in UNIT_TEST_CHECKS for key in check.check_keys]

    def run_checks():
        result = dg.materialize(
            [warehouse_models, mart_models, *UNIT_TEST_CHECKS], selection=dg.AssetSelection.checks(*keys),
            resources={"dbt": DbtCliResource(project_dir=str(project), profiles_dir=str(project),
                                             dbt_executable=DBT_EXECUTABLE), "cqi": CqiResource()})
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == len(keys) and all(e.passed for e in evaluations)
        return result.run_id, {e.check_name: e.metadata.get("proven_by_run") for e in evaluations}

    first, proof = run_checks()
    assert set(proof.values()) == {None}, "the first run runs every unit test"
    _, proof = run_checks()
    assert set(proof.values()) == {dg.MetadataValue.text(first)}, "the same code: passes recorded, not re-run"
    model = project / "models" / "marts" / "fct_case_risk.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    _, proof = run_checks()
    assert set(proof.values()) == {None}, "an edited project runs its unit tests again"


def _dbt_build(warehouse: Path, target: Path, *extra: str, command: str = "build", code: str | None = None,
               check: bool = True) -> dict:
    """Run dbt on ``warehouse`` (``code``: CQI_DBT_CODE, none by default); each node's run result by unique id."""
    from orchestration.defs.warehouse.dbt_assets import DBT_EXECUTABLE
    env = {**{k: v for k, v in os.environ.items() if k != "CQI_DBT_CODE"}, "CQI_WAREHOUSE": str(warehouse),
           **({"CQI_DBT_CODE": code} if code else {})}
    subprocess.run([DBT_EXECUTABLE, command, "--exclude-resource-type", "unit_test", "--quiet",
                    "--target-path", str(target), *extra],
                   cwd=PROJECT_ROOT / "dbt_project", env=env, check=check)
    return {r["unique_id"]: r for r in json.loads((target / "run_results.json").read_text())["results"]}


def _resubmit_first_site_period(warehouse: Path) -> str:
    """Record a resubmission of the first site's first period with one outcome changed; return the site."""
    with duckdb.connect(str(warehouse)) as con:
        site, period, submission = con.execute(
            "select site_id, period, submission_id from intake.current_submission_periods "
            "order by site_id, period limit 1").fetchone()
        con.execute("create temp table resubmitted as select * from raw.cases where submission_id = ? and period = ?",
                    [submission, period])
        con.execute("update resubmitted set readmission_30d = not coalesce(readmission_30d, false) "
                    "where case_id = (select min(case_id) from resubmitted)")
        con.execute("update resubmitted set submission_id = 'resubmission-test'")
        con.execute("insert into raw.cases select * from resubmitted")
        con.execute("insert into intake.submissions select * replace ('resubmission-test' as submission_id, "
                    "(select max(sequence) + 1 from intake.submissions) as sequence, [?] as periods) "
                    "from intake.submissions where submission_id = ?", [period, submission])
    return site


# Each incremental model and a text column (without accepted values) to plant a
# canary value in: a row that still holds the canary after a build was not
# rewritten by it.
INCREMENTAL_BY_SITE = {"intermediate.int_case_outcomes": "exclusion_reason", "marts.fct_case_risk": "model_version",
                       "intermediate.int_site_period_outcomes": "blinded_code"}


def _plant_canaries(con, sites) -> dict:
    """Overwrite one row per (table, site) with 'canary'; return how to find and restore each.

    The row is the site's first measure in its last period: never in the first period, which
    ``_resubmit_first_site_period`` changes (a table's row order is not fixed, so "its first row"
    was sometimes in that measure-period, whose group was then computed once for both reasons)."""
    planted = {}
    for table, column in INCREMENTAL_BY_SITE.items():
        for site in sites:
            rowid, value = con.execute(f"select rowid, {column} from {table} where site_id = ? "
                                       "order by period desc, measure_id, rowid limit 1", [site]).fetchone()
            con.execute(f"update {table} set {column} = 'canary' where rowid = ?", [rowid])
            planted[(table, site)] = value
    return planted


def _canaries_left(con) -> set:
    return {(table, site) for table, column in INCREMENTAL_BY_SITE.items()
            for (site,) in con.execute(f"select distinct site_id from {table} where {column} = 'canary'").fetchall()}


def test_an_incremental_dbt_build_rewrites_only_the_resubmitting_site_and_equals_a_full_build(pipeline, tmp_path):
    _, folders, _, _ = pipeline
    incremental = tmp_path / "incremental" / "warehouse.duckdb"
    incremental.parent.mkdir()
    shutil.copy(folders.warehouse, incremental)
    # the reliability fits of the last build come along: unchanged measure-periods reuse theirs
    shutil.copytree(folders.warehouse.parent / ".cache", incremental.parent / ".cache")
    site = _resubmit_first_site_period(incremental)
    with duckdb.connect(str(incremental), read_only=True) as con:
        other = con.execute("select max(site_id) from marts.fct_case_risk").fetchone()[0]
    full = tmp_path / "full" / "warehouse.duckdb"
    full.parent.mkdir()
    shutil.copy(incremental, full)
    with duckdb.connect(str(incremental)) as con:
        planted = _plant_canaries(con, [site, other])
        # a third site with one row built from other inputs, and a row without a site: both must go
        third = con.execute("select min(site_id) from marts.fct_case_risk where site_id not in (?, ?)",
                            [site, other]).fetchone()[0]
        con.execute("update marts.fct_case_risk set site_fingerprint = 'stale' "
                    "where rowid = (select min(rowid) from marts.fct_case_risk where site_id = ?)", [third])
        con.execute("insert into marts.fct_case_risk select * replace (null as site_id) from marts.fct_case_risk "
                    "where site_id = ? limit 1", [other])
    results = _dbt_build(incremental, tmp_path / "incremental" / "target")
    _dbt_build(full, tmp_path / "full" / "target", "--full-refresh")
    # each incremental model named the sites it rebuilds: DuckDB then skips the other sites' rows
    for table, rebuilt in {"int_case_outcomes": {site}, "int_site_period_outcomes": {site},
                           "fct_case_risk": {site, third}}.items():
        compiled = results[f"model.cqi_warehouse.{table}"]["compiled_code"]
        filters = re.findall(r"site_id in \(([^)]*)\)", compiled)
        assert filters and all(set(re.findall(r"'([^']*)'", f)) == rebuilt for f in filters), (table, filters)
        assert "from to_build" not in compiled, table
    # the other site's canary blinded code is in one measure-period of the last quarter: that group is computed
    # again from its stored fit (its numbers did not change); the resubmitted quarter's changed group is refitted
    fits = [set(json.loads((path.parent / ".cache" / "reliability_fits.json").read_text())["fits"])
            for path in (folders.warehouse, incremental)]
    assert 0 < len(fits[0] & fits[1]) < len(fits[1]), "the resubmitted quarter refitted, the others reused"

    with duckdb.connect(str(incremental)) as con:
        assert _canaries_left(con) == {(table, other) for table in INCREMENTAL_BY_SITE}, \
            "the resubmitting site is rebuilt in every incremental model, the other site in none"
        for (table, planted_site), value in planted.items():   # put the unchanged site's values back
            if planted_site == other:
                con.execute(f"update {table} set {INCREMENTAL_BY_SITE[table]} = ? "
                            f"where {INCREMENTAL_BY_SITE[table]} = 'canary'", [value])
    # the marts were built beside the planted blinded code: compared without it
    tables = {**{table: "*" for table in INCREMENTAL_BY_SITE}, "marts.mart_site_results": "* exclude (blinded_code)",
              "marts.mart_funnel_limits": "*", "marts.mart_collaborative_summary": "*"}
    with duckdb.connect(str(incremental), read_only=True) as inc, duckdb.connect(str(full), read_only=True) as ref:
        for table, columns in tables.items():
            built = inc.execute(f"select {columns} from {table} order by all").df()
            assert len(built) > 0, table
            pd.testing.assert_frame_equal(built, ref.execute(f"select {columns} from {table} order by all").df(),
                                          check_exact=True, obj=table)


# Models whose rows of a site depend only on that site's inputs, and which record their sites' fingerprints.
SITE_FINGERPRINTED = {f"model.cqi_warehouse.{name}" for name in (
    "stg_registry__cases", "int_case_outcomes", "int_site_period_outcomes", "fct_case_risk")}


def _site_local_tests() -> set:
    """Data tests whose verdict is one on each site's rows (read from the manifest, not from the macro)."""
    manifest = json.loads((PROJECT_ROOT / "dbt_project" / "target" / "manifest.json").read_text())
    local = set()
    for key, node in manifest["nodes"].items():
        if node["resource_type"] == "test" and node.get("attached_node") in SITE_FINGERPRINTED:
            name, kwargs = node["test_metadata"]["name"], node["test_metadata"]["kwargs"]
            if name in {"not_null", "not_null_columns", "accepted_values", "relationships"} or "site_id" in kwargs.get("columns", []):
                local.add(key)
    return local


def _site_filters(results: dict, sites: set) -> dict:
    """Per data test: the sites of ``sites`` its query read ('all' when it was not narrowed)."""
    filters = {}
    for key, result in results.items():
        if key.startswith("test."):
            left_out = re.search(r"where \(site_id is null or not list_contains\(\[([^\]]*)\], site_id\)\)\) dbt_subquery",
                                 result["compiled_code"])
            filters[key] = (frozenset(sites - set(re.findall(r"'([^']*)'", left_out.group(1)))) if left_out
                            else "all")
    return filters


def _stored_group_keys(warehouse_dir: Path) -> set:
    """The measure-period groups of site results stored beside the warehouse (riskmodels/stored_groups.py)."""
    return set(pd.read_parquet(warehouse_dir / ".cache" / "site_result_groups" / "results.parquet")["_group_key"])


def test_data_tests_of_site_incremental_models_read_only_the_sites_they_have_not_passed(pipeline, tmp_path):
    _, folders, _, _ = pipeline
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(folders.warehouse, warehouse)
    shutil.copytree(folders.warehouse.parent / ".cache", tmp_path / ".cache")
    local = _site_local_tests()
    assert len(local) >= 10
    with duckdb.connect(str(warehouse), read_only=True) as con:
        sites = {s for (s,) in con.execute("select distinct site_id from intake.current_submission_periods").fetchall()}
    assert len(sites) >= 3
    nothing, everything = frozenset(), "all"

    first = _site_filters(_dbt_build(warehouse, tmp_path / "t1", code="code-1"), sites)
    assert set(first.values()) == {everything}, "no pass recorded under this code yet: every row is tested"
    again = _site_filters(_dbt_build(warehouse, tmp_path / "t2", code="code-1"), sites)
    assert {k for k, v in again.items() if v == nothing} == local, "nothing changed: the site-local tests read nothing"
    assert {k for k, v in again.items() if v == everything} == set(again) - local

    site = _resubmit_first_site_period(warehouse)
    groups_before = _stored_group_keys(tmp_path)
    resubmitted = _site_filters(_dbt_build(warehouse, tmp_path / "t3", code="code-1"), sites)
    assert {k for k, v in resubmitted.items() if v == {site}} == local, "only the resubmitting site is read"
    groups_after = _stored_group_keys(tmp_path)
    assert 0 < len(groups_before & groups_after) < len(groups_after), \
        "the site results of the resubmitted quarter were computed, the other measure-periods' read back"

    # A failing test records no pass: the site is read, and fails, until its rows are fixed.
    unique = next(k for k in local if k.startswith("test.cqi_warehouse.unique_combination_fct_case_risk"))
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from dbt_state.passed_site_tests where site_id = ?", [site])
        con.execute("insert into marts.fct_case_risk select * from marts.fct_case_risk where site_id = ? limit 1",
                    [site])
    for target in ("t6", "t7"):
        failing = _dbt_build(warehouse, tmp_path / target, "--select", "fct_case_risk", command="test",
                             code="code-1", check=False)
        assert failing[unique]["status"] == "fail" and _site_filters(failing, sites)[unique] == {site}, target
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create temp table kept as select distinct * from marts.fct_case_risk where site_id = ?", [site])
        con.execute("delete from marts.fct_case_risk where site_id = ?", [site])
        con.execute("insert into marts.fct_case_risk select * from kept")
    fixed = _dbt_build(warehouse, tmp_path / "t8", "--select", "fct_case_risk", command="test", code="code-1")
    assert fixed[unique]["status"] == "pass" and _site_filters(fixed, sites)[unique] == {site}
    after = _dbt_build(warehouse, tmp_path / "t9", "--select", "fct_case_risk", command="test", code="code-1")
    assert _site_filters(after, sites)[unique] == nothing
    # only a recorded pass leaves a site out: a site whose fingerprint is not recorded is read
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from dbt_state.site_fingerprints where site_id = ? and model_id = ?",
                    [site, "model.cqi_warehouse.fct_case_risk"])
    unrecorded = _dbt_build(warehouse, tmp_path / "t9b", "--select", "fct_case_risk", command="test", code="code-1")
    assert _site_filters(unrecorded, sites)[unique] == {site}

    other_code = _site_filters(_dbt_build(warehouse, tmp_path / "t10", command="test", code="code-2"), sites)
    without_code = _site_filters(_dbt_build(warehouse, tmp_path / "t11", command="test"), sites)
    assert set(other_code.values()) == set(without_code.values()) == {everything}, \
        "another project code, or none (an analyst's dbt), tests every row"


def test_not_null_columns_fails_once_for_each_null_cell_and_names_its_column(pipeline, tmp_path):
    _, folders, _, _ = pipeline
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(folders.warehouse, warehouse)
    columns = ["site_id", "case_id", "period", "measure_id", "model_version", "is_event", "linear_predictor",
               "expected_probability"]
    test_id = next(k for k in _dbt_build(warehouse, tmp_path / "t0", "--select", "fct_case_risk", command="test")
                   if k.startswith("test.cqi_warehouse.not_null_columns_fct_case_risk"))
    with duckdb.connect(str(warehouse)) as con:
        site = con.execute("select min(site_id) from marts.fct_case_risk").fetchone()[0]
        con.execute("update marts.fct_case_risk set linear_predictor = null where site_id = ? and case_id in "
                    "(select case_id from marts.fct_case_risk where site_id = ? order by case_id limit 2)",
                    [site, site])
        con.execute("update marts.fct_case_risk set model_version = null, is_event = null where site_id = ? and "
                    "case_id = (select max(case_id) from marts.fct_case_risk where site_id = ?)", [site, site])
        expected = {column: n for column in columns for (n,) in con.execute(
            f"select count(*) from marts.fct_case_risk where {column} is null").fetchall() if n}
    assert set(expected) == {"linear_predictor", "model_version", "is_event"}
    failing = _dbt_build(warehouse, tmp_path / "t1", "--select", "fct_case_risk", command="test", check=False)
    assert failing[test_id]["status"] == "fail" and failing[test_id]["failures"] == sum(expected.values())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        named = dict(con.execute(f"select null_column, count(*) from ({failing[test_id]['compiled_code']}) "
                                 f"group by 1").fetchall())
    assert named == expected


def _materialise_dbt_assets(warehouse: Path, monkeypatch):
    """Build both dbt assets on ``warehouse`` with the pipeline's dbt resource; (materialised keys, checks)."""
    import dagster as dg

    from orchestration.defs.resources import CqiResource
    from orchestration.defs.warehouse.dbt_assets import dbt_resource, mart_models, warehouse_models

    monkeypatch.setenv("CQI_WAREHOUSE", str(warehouse))
    result = dg.materialize([warehouse_models, mart_models], resources={"dbt": dbt_resource(), "cqi": CqiResource()})
    assert result.success
    keys = sorted(m.asset_key.to_user_string() for m in result.get_asset_materialization_events()
                  for m in [m.step_materialization_data.materialization])
    checks = sorted((e.asset_key.to_user_string(), e.check_name, e.passed) for e in result.get_asset_check_evaluations())
    return keys, checks


def test_dbt_in_the_step_process_gives_the_events_and_tables_of_a_dbt_process(pipeline, tmp_path, monkeypatch):
    import dagster_dbt.core.dbt_cli_invocation as invocation_module

    from orchestration.defs.warehouse import dbt_assets

    _, folders, _, _ = pipeline
    built = {}
    for way in ("in_process", "subprocess"):
        warehouse = tmp_path / way / "warehouse.duckdb"
        warehouse.parent.mkdir()
        shutil.copy(folders.warehouse, warehouse)
        started = []
        real_popen = subprocess.Popen

        def popen(*args, **kwargs):
            started.append(args)
            return real_popen(*args, **kwargs)

        monkeypatch.setattr(invocation_module.subprocess, "Popen", popen)
        targets, keep = [], dbt_assets.keep_partial_parse
        monkeypatch.setattr(dbt_assets, "keep_partial_parse", lambda target: targets.append(target) or keep(target))
        if way == "subprocess":
            monkeypatch.setenv("CQI_DBT_SUBPROCESS", "1")
        built[way] = _materialise_dbt_assets(warehouse, monkeypatch)
        assert len(started) == (0 if way == "in_process" else 2), "dbt ran in the step's process, or in two processes"
        # in the step's process dbt writes its run results but not the manifest (nothing reads that copy)
        assert len(targets) == 2 and all((target / "run_results.json").is_file() for target in targets)
        assert [(target / "manifest.json").exists() for target in targets] == [way == "subprocess"] * 2
        monkeypatch.undo()
        # dbt let go of the file: another process can open it for writing
        subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(warehouse)!r}).close()"], check=True)

    assert built["in_process"] == built["subprocess"]
    keys, checks = built["in_process"]
    # every dbt data test of the two steps came back as a passing asset check
    planned = {(spec.asset_key.to_user_string(), spec.name)
               for step in (dbt_assets.warehouse_models, dbt_assets.mart_models) for spec in step.check_specs}
    assert "marts/mart_site_results" in keys and len(planned) >= 20
    assert {(key, name) for key, name, _ in checks} == planned and all(passed for *_, passed in checks)
    tables = ["marts.fct_case_risk", "marts.mart_site_results", "marts.mart_funnel_limits",
              "marts.mart_collaborative_summary", "intermediate.int_site_period_outcomes"]
    with duckdb.connect(str(tmp_path / "in_process" / "warehouse.duckdb"), read_only=True) as a, \
            duckdb.connect(str(tmp_path / "subprocess" / "warehouse.duckdb"), read_only=True) as b:
        for table in tables:
            pd.testing.assert_frame_equal(a.execute(f"from {table} order by all").df(),
                                          b.execute(f"from {table} order by all").df(), check_exact=True, obj=table)


def test_a_failing_dbt_invocation_in_the_step_process_raises_with_dbt_s_message(pipeline, tmp_path, monkeypatch):
    from dagster_dbt.errors import DagsterDbtCliRuntimeError

    from orchestration.defs.warehouse.dbt_assets import DBT_EXECUTABLE, CqiDbtCliResource

    _, folders, _, _ = pipeline
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "staging" / "stg_registry__sites.sql"
    model.write_text(model.read_text() + "\nwhere no_such_column = 1\n")
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(folders.warehouse, warehouse)
    monkeypatch.setenv("CQI_WAREHOUSE", str(warehouse))
    dbt = CqiDbtCliResource(project_dir=str(project), profiles_dir=str(project), dbt_executable=DBT_EXECUTABLE)
    parsed = dbt.cli(["parse"], raise_on_error=True).wait()
    assert parsed.is_successful()
    with pytest.raises(DagsterDbtCliRuntimeError) as failure:
        dbt.cli(["run", "--select", "stg_registry__sites"], manifest=parsed.target_path / "manifest.json").wait()
    assert "no_such_column" in str(failure.value)
    with duckdb.connect(str(warehouse), config={"memory_limit": "1GB"}) as con:   # not held with dbt's settings
        assert con.execute("select count(*) from staging.stg_registry__sites").fetchone()[0] > 0
