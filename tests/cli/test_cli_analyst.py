"""``cqi sql``, ``funnel`` and ``docs``: main paths and errors on the shared demo deployment."""

from __future__ import annotations

import io
import json

import duckdb
import pandas as pd
import pytest

from orchestration.settings import DBT_PROJECT_DIR

pytestmark = pytest.mark.slow

MART_MODELS = sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").iterdir() if p.suffix in (".sql", ".py"))


def analyst_db(deployment) -> str:
    return str(deployment.data_dir / "analyst" / "latest" / "analyst.duckdb")


def test_sql_prints_the_result_and_writes_csv_and_parquet(deployment, tmp_path):
    query = "select site_id, count(*) as site_periods from marts.mart_site_results group by site_id order by site_id"
    with duckdb.connect(analyst_db(deployment), read_only=True) as con:
        expected = con.execute(query).df()
    shown = deployment.cqi("sql", query)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert lines[0].split() == ["site_id", "site_periods"]
    assert [line.split() for line in lines[1:]] == [[s, str(n)] for s, n in expected.itertuples(index=False)]
    for name, read in (("out.csv", pd.read_csv), ("out.parquet", pd.read_parquet)):
        done = deployment.cqi("sql", query, "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        pd.testing.assert_frame_equal(read(tmp_path / name), expected, check_dtype=False)


def test_sql_refuses_writes_and_reports_a_bad_table(deployment):
    refused = deployment.cqi("sql", "delete from marts.mart_site_results")
    assert refused.returncode == 2 and "read-only" in refused.stderr
    missing = deployment.cqi("sql", "select * from marts.no_such_mart")
    assert missing.returncode == 2
    assert "no_such_mart" in missing.stderr and "information_schema.tables" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_sql_before_any_publication_says_to_run_the_pipeline(empty_deployment):
    done = empty_deployment.cqi("sql", "select 1")
    assert done.returncode == 1
    assert "no analyst copy yet" in done.stderr and "cqi demo" in done.stderr


def test_funnel_computes_limits_for_groups_from_the_marts(deployment, tmp_path):
    groups = tmp_path / "groups.csv"
    with duckdb.connect(analyst_db(deployment), read_only=True) as con:
        frame = con.execute("select site_id, sum(observed)::int as deaths, sum(cases)::int as cases "
                            "from marts.mart_site_results where is_included and measure_id = 'mortality_30d' "
                            "group by site_id order by site_id").df()
    frame.to_csv(groups, index=False)
    done = deployment.cqi("funnel", str(groups), "--group", "site_id", "--numerator", "deaths",
                          "--denominator", "cases", "--overdispersion", "additive")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(io.StringIO(done.stdout))
    assert sorted(table["group"]) == sorted(frame.site_id)
    assert table.filter(like="998").shape[1] >= 2, "limits at the default 99.8% level"
    assert "phi=" in done.stderr and "tau2=" in done.stderr and f"groups={len(frame)}" in done.stderr


def test_funnel_names_the_columns_a_file_has_when_one_is_missing(deployment, tmp_path):
    groups = tmp_path / "groups.csv"
    groups.write_text("hospital,events,n\nA,1,10\nB,2,20\n", encoding="utf-8")
    done = deployment.cqi("funnel", str(groups), "--group", "site", "--numerator", "events", "--denominator", "n")
    assert done.returncode == 2
    assert "no column site" in done.stderr and "hospital, events, n" in done.stderr


def test_docs_describe_every_mart_and_every_column_of_it(deployment):
    done = deployment.cqi("docs")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    folder = deployment.data_dir / "dbt_docs"
    assert str(folder / "static_index.html") in done.stdout and (folder / "static_index.html").is_file()
    manifest = json.loads((folder / "manifest.json").read_text())
    catalog = json.loads((folder / "catalog.json").read_text())
    for model in MART_MODELS:
        key = f"model.{manifest['metadata'].get('project_name', 'cqi_warehouse')}.{model}"
        node, built = manifest["nodes"][key], catalog["nodes"].get(key)
        assert node["description"].strip(), f"{model} has no description"
        assert built, f"{model} is not in the catalog: it is not in the warehouse"
        columns = [c.lower() for c in built["columns"]]
        assert columns, model
        documented = {name.lower(): c.get("description", "").strip() for name, c in node["columns"].items()}
        undocumented = [c for c in columns if not documented.get(c)]
        assert not undocumented, f"{model}: columns without a description in _marts__models.yml: {undocumented}"


def test_docs_without_a_warehouse_say_how_to_build_one(empty_deployment):
    done = empty_deployment.cqi("docs")
    assert done.returncode == 1
    assert "no warehouse" in done.stderr and "cqi demo" in done.stderr


def test_docs_while_a_run_holds_the_warehouse_exits_4(deployment, lock_held):
    with lock_held(deployment.data_dir):
        done = deployment.cqi("docs")
    assert done.returncode == 4
    assert "another pipeline run is in progress" in done.stderr
