"""The publication's case file: one Parquet file per site, and only changed sites copied again.

A release's scored cases are what its CUSUM and VLAD charts and its case
lists are drawn from, so a file taken from the previous release must hold
exactly the rows the warehouse holds now: these tests compare every row.
"""

from __future__ import annotations

import json
import os

import duckdb
import pandas as pd
import pytest

from orchestration.publish.inputs import CASE_COLUMNS, FINGERPRINTS, CaseFile

SITES = ["S01", "S02", "S03", "St. Mary's/2"]


def _cases(sites=SITES, per_site: int = 40) -> pd.DataFrame:
    rows = [{"site_id": site, "case_id": f"{site[:3]}-{i:03d}", "period": f"2025Q{1 + i % 4}",
             "operation_date": pd.Timestamp("2025-01-01") + pd.Timedelta(days=i * 2), "measure_id": m,
             "is_event": i % 7 == 0, "expected_probability": 0.01 + (i % 13) / 20}
            for site in sites for i in range(per_site) for m in ("mortality_30d", "ssi_30d")]
    return pd.DataFrame(rows)[CASE_COLUMNS]


def _write(frame: pd.DataFrame, path, previous=None) -> CaseFile:
    with duckdb.connect() as con:
        con.register("frame", frame)
        return CaseFile.copy_from(con, "select * from frame where period <= ?", ["2025Q4"], path, previous)


def _inode(case_file: CaseFile, site: str) -> int:
    return os.stat(case_file._files[site][0]).st_ino


def test_a_new_case_file_links_unchanged_sites_and_copies_only_changed_ones(tmp_path):
    before = _cases()
    first = _write(before, tmp_path / "first")
    after = before.copy()
    after.loc[(after["site_id"] == "S02") & (after["case_id"] == "S02-007"), "expected_probability"] += 1e-12
    after = pd.concat([after[after["site_id"] != "S03"], _cases(["S09"])], ignore_index=True)
    second = _write(after, tmp_path / "second", previous=first)

    pd.testing.assert_frame_equal(second.frame(), CaseFile.of_frame(after, tmp_path / "fresh").frame())
    assert second.site_ids() == ["S01", "S02", "S09", "St. Mary's/2"]
    assert _inode(second, "S01") == _inode(first, "S01")                 # unchanged: linked, not copied
    assert _inode(second, "St. Mary's/2") == _inode(first, "St. Mary's/2")
    assert _inode(second, "S02") != _inode(first, "S02")                 # one probability moved: copied
    assert second.site("S03").empty and len(second.site("S09")) == 80
    assert len(first.site("S03")) == 80                                  # the previous release is untouched


def test_a_site_whose_rows_moved_between_sites_or_repeat_is_copied_again(tmp_path):
    before = _cases()
    first = _write(before, tmp_path / "first")
    doubled = pd.concat([before, before[before["site_id"] == "S01"].head(1)], ignore_index=True)
    second = _write(doubled, tmp_path / "second", previous=first)
    assert _inode(second, "S01") != _inode(first, "S01") and len(second.site("S01")) == 81
    assert _inode(second, "S02") == _inode(first, "S02")


def test_nothing_is_linked_from_a_file_written_with_other_columns(tmp_path):
    first = _write(_cases(), tmp_path / "first")
    saved = json.loads((first.path / FINGERPRINTS).read_text())
    (first.path / FINGERPRINTS).write_text(json.dumps({**saved, "columns": CASE_COLUMNS[:-1]}))
    second = _write(_cases(), tmp_path / "second", previous=first)
    assert all(_inode(second, s) != _inode(first, s) for s in SITES)
    pd.testing.assert_frame_equal(second.frame(), first.frame())


def test_a_release_with_the_older_single_case_file_still_reads(tmp_path):
    cases = _cases()
    folder = tmp_path / "inputs"
    folder.mkdir()
    with duckdb.connect() as con:
        con.register("frame", cases)
        con.execute(f"copy (select * from frame) to '{folder / 'cases.parquet'}' (format parquet)")
    legacy = CaseFile.in_folder(folder)
    assert legacy.path.is_file() and legacy.site_ids() == sorted(SITES)
    expected = cases[cases["site_id"] == "S02"].drop(columns="site_id")
    expected = expected.sort_values(["measure_id", "operation_date", "case_id"]).reset_index(drop=True)
    expected["operation_date"] = expected["operation_date"].astype("datetime64[us]")
    pd.testing.assert_frame_equal(legacy.site("S02"), expected)
    second = _write(cases, tmp_path / "second", previous=legacy)        # nothing to link from it
    pd.testing.assert_frame_equal(second.frame(), legacy.frame())


@pytest.mark.parametrize("empty", [True, False])
def test_a_site_without_cases_reads_as_no_rows_with_the_columns(tmp_path, empty):
    cases = _cases()
    case_file = _write(cases.iloc[:0] if empty else cases, tmp_path / "cases")
    nobody = case_file.site("nobody")
    assert nobody.empty and list(nobody.columns) == CASE_COLUMNS[1:]
    assert case_file.events("2025Q1").empty == empty
