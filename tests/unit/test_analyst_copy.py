"""The analyst copy refreshed from the previous snapshot: equal to the warehouse, whatever changed.

Each snapshot links the previous one's files of the sites whose scored cases
did not change and writes the others; these tests compare every table of the
new snapshot, in DuckDB and in Parquet, with the warehouse it was made from.
"""

from __future__ import annotations

import os

import duckdb
import pandas as pd
import pytest

from orchestration.publish.analyst_copy import BY_SITE, FINGERPRINTS, TABLES, publish_analyst_copy


def _warehouse(path) -> None:
    with duckdb.connect(str(path)) as con:
        for schema in ("marts", "registry", "models"):
            con.execute(f"create schema {schema}")
        con.execute("create table marts.fct_case_risk as select 'S' || (i % 3 + 1) as site_id, 'C' || i as case_id, "
                    "'2025Q' || (i % 4 + 1) as period, 'mortality_30d' as measure_id, i % 5 = 0 as is_event, "
                    "0.01 + (i % 17) / 40 as expected_probability from range(3000) t(i)")
        con.execute("create table marts.mart_site_results as select distinct site_id, period, 1.0 as oe "
                    "from marts.fct_case_risk")
        for table in ("marts.mart_funnel_limits", "marts.mart_collaborative_summary", "registry.measures",
                      "models.model_versions"):
            con.execute(f"create table {table} as select 1 as x")
        con.execute("create table registry.sites as select distinct site_id from marts.fct_case_risk")


def _tables(database) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {t: con.execute(f"select * from {t} order by all").df() for t in TABLES}


def _parquet(snapshot, table) -> pd.DataFrame:
    """A table's Parquet copy: one file, or a folder with a file per site (``BY_SITE``), read as an analyst would."""
    name = table.split(".")[1]
    path = f"{snapshot / name}/*/*.parquet" if table in BY_SITE else snapshot / f"{name}.parquet"
    return duckdb.sql(f"select * from read_parquet('{path}')").df()


def _site_files(snapshot) -> dict:
    """Each site's Parquet file of the scored cases: (inode, bytes)."""
    return {path.parent.name: (path.stat().st_ino, path.read_bytes())
            for path in (snapshot / "fct_case_risk").glob("site_id=*/*.parquet")}


def _assert_copy_equals_warehouse(snapshot, warehouse) -> None:
    expected = _tables(warehouse)
    for table, frame in _tables(snapshot / "analyst.duckdb").items():
        pd.testing.assert_frame_equal(frame, expected[table], obj=table)
        parquet = _parquet(snapshot, table)[list(expected[table].columns)]
        parquet = parquet.sort_values(list(parquet.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(parquet, expected[table], obj=f"{table} (Parquet)", check_dtype=False)


@pytest.fixture
def first(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    _warehouse(warehouse)
    return warehouse, publish_analyst_copy(warehouse, tmp_path / "analyst", "first")


def test_a_refreshed_copy_rewrites_only_changed_sites_and_equals_the_warehouse(first, tmp_path):
    warehouse, snapshot = first
    _assert_copy_equals_warehouse(snapshot, warehouse)
    before, files_before = _tables(snapshot / "analyst.duckdb"), _site_files(snapshot)
    assert set(files_before) == {"site_id=S1", "site_id=S2", "site_id=S3"}
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_case_risk set expected_probability = 0.5 where case_id = 'C4'")   # site S2
        con.execute("delete from marts.fct_case_risk where site_id = 'S3'")
        con.execute("insert into marts.fct_case_risk select 'S4', 'C9', '2025Q1', 'mortality_30d', true, 0.2")
        con.execute("update marts.mart_site_results set oe = 2.0 where site_id = 'S1'")
    second = publish_analyst_copy(warehouse, tmp_path / "analyst", "second")
    _assert_copy_equals_warehouse(second, warehouse)
    for table, frame in _tables(snapshot / "analyst.duckdb").items():      # the previous snapshot is untouched
        pd.testing.assert_frame_equal(frame, before[table])
    assert _site_files(snapshot) == files_before
    files = _site_files(second)
    assert set(files) == {"site_id=S1", "site_id=S2", "site_id=S4"}
    assert files["site_id=S1"] == files_before["site_id=S1"], "the unchanged site's file is the previous one, linked"
    assert files["site_id=S2"][0] != files_before["site_id=S2"][0], "the changed site's file is written anew"


def test_a_table_whose_columns_changed_is_copied_whole(first, tmp_path):
    warehouse, _ = first
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table marts.fct_case_risk add column model_version varchar default 'm2'")
    second = publish_analyst_copy(warehouse, tmp_path / "analyst", "second")
    _assert_copy_equals_warehouse(second, warehouse)
    assert "model_version" in _tables(second / "analyst.duckdb")["marts.fct_case_risk"]


def test_a_table_no_longer_published_is_not_carried_into_the_next_snapshot(first, tmp_path):
    warehouse, snapshot = first
    with duckdb.connect(str(snapshot / "analyst.duckdb")) as con:
        con.execute("create table marts.retired as select 1 as x")
    second = publish_analyst_copy(warehouse, tmp_path / "analyst", "second")
    with duckdb.connect(str(second / "analyst.duckdb"), read_only=True) as con:
        names = {f"{s}.{n}" for s, n in con.execute("select table_schema, table_name from information_schema.tables")
                 .fetchall()}
    assert names == set(TABLES)


def test_the_cases_of_sites_found_unchanged_come_from_the_previous_snapshot(first, tmp_path, monkeypatch):
    from orchestration.publish import analyst_copy

    warehouse, snapshot = first
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_case_risk set expected_probability = 0.5 where site_id = 'S2'")
    monkeypatch.setattr(analyst_copy, "reusable_sites", lambda *_: ["site_id=S2"])   # S2 is taken as unchanged
    second = publish_analyst_copy(warehouse, tmp_path / "analyst", "second")
    cases = _tables(second / "analyst.duckdb")["marts.fct_case_risk"]
    previous = _tables(snapshot / "analyst.duckdb")["marts.fct_case_risk"]
    pd.testing.assert_frame_equal(cases, previous)          # S2 not re-read; S1 re-read (and equal)
    assert not (cases.loc[cases["site_id"] == "S2", "expected_probability"] == 0.5).any()


def test_the_scored_cases_are_a_view_over_the_parquet_folder_with_the_warehouse_column_types(first):
    warehouse, snapshot = first
    with duckdb.connect(str(snapshot / "analyst.duckdb"), read_only=True) as copy, \
            duckdb.connect(str(warehouse), read_only=True) as source:
        views = {f"{s}.{n}" for s, n in copy.execute("select schema_name, view_name from duckdb_views() "
                                                    "where not internal").fetchall()}
        assert views == BY_SITE
        for table in BY_SITE:
            assert copy.execute(f"describe {table}").fetchall() == source.execute(f"describe {table}").fetchall()


def test_a_site_file_changed_since_the_previous_snapshot_is_written_again(first, tmp_path):
    warehouse, snapshot = first
    (file,) = (snapshot / "fct_case_risk" / "site_id=S1").glob("*.parquet")
    duckdb.sql(f"copy (select * exclude (site_id) from read_parquet('{file}') limit 5) to '{file}.new' "
               f"(format parquet)")
    os.replace(f"{file}.new", file)            # S1's rows in the previous snapshot are not the warehouse's now
    second = publish_analyst_copy(warehouse, tmp_path / "analyst", "second")
    _assert_copy_equals_warehouse(second, warehouse)
    files, before = _site_files(second), _site_files(snapshot)
    assert files["site_id=S1"][0] != before["site_id=S1"][0]
    assert files["site_id=S2"] == before["site_id=S2"], "an unchanged site is still linked"


def test_a_damaged_record_writes_every_site_again(first, tmp_path):
    warehouse, snapshot = first
    (snapshot / FINGERPRINTS).write_text("{not json", encoding="utf-8")
    second = publish_analyst_copy(warehouse, tmp_path / "analyst", "second")
    _assert_copy_equals_warehouse(second, warehouse)
    files, before = _site_files(second), _site_files(snapshot)
    assert set(files) == set(before) and all(files[site][0] != before[site][0] for site in files)


def test_a_table_without_rows_is_an_empty_table_with_its_columns(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    _warehouse(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from marts.fct_case_risk")
    snapshot = publish_analyst_copy(warehouse, tmp_path / "analyst", "first")
    with duckdb.connect(str(snapshot / "analyst.duckdb"), read_only=True) as copy, \
            duckdb.connect(str(warehouse), read_only=True) as source:
        assert copy.execute("describe marts.fct_case_risk").fetchall() == \
            source.execute("describe marts.fct_case_risk").fetchall()
        assert copy.execute("select count(*) from marts.fct_case_risk").fetchone()[0] == 0
