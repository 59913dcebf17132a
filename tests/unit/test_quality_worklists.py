"""Abstractor worklists (CSV, XLSX, HTML) and the `cqi queries` and `cqi override` commands."""

import json

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.intake import receive_file
from orchestration.quality.run import run_quality
from orchestration.quality.worklists import neutralise
from orchestration.settings import Paths
from support import SECRET, demo_registry, site_file, warehouse


@pytest.fixture
def site_with_queries(tmp_path, monkeypatch):
    monkeypatch.setenv("CQI_DATA_DIR", str(tmp_path / "data"))
    registry = demo_registry()
    folders = Paths(tmp_path / "data").ensure()
    path = site_file(registry, folders.landing, "S01", cases=60,
                     row5={"asa_class": "=HYPERLINK(\"http://x\")"}, row2={"weight_kg": "-72.5"},
                     row3={"height_cm": "19"}, row7={"discharge_date": "2025-01-01", "death_date": "2025-01-02"})
    with warehouse(folders, registry) as con:
        receive_file(con, registry, folders, path, "S01", SECRET)
        run_quality(con, registry, folders)
    return registry, folders


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised():
    assert [neutralise(v) for v in ("=1+1", "+1", "-72.5", "@SUM(A1)", "ok", 3)] == \
           ["'=1+1", "'+1", "'-72.5", "'@SUM(A1)", "ok", 3]


def test_the_csv_worklist_is_grouped_by_case_blocking_first_and_safe_to_open(site_with_queries):
    registry, folders = site_with_queries
    frame = pd.read_csv(folders.worklists / "S01" / "queries.csv", dtype=str, keep_default_na=False)
    row_level = frame[frame.case_id != ""]
    assert list(row_level.case_id) == sorted(row_level.case_id)        # grouped by case
    assert (frame.severity.iloc[:len(row_level)] == "blocking").all()
    assert not frame.observed.str.match(r"^[=+\-@]").any()
    assert "'=HYPERLINK(\"http://x\")" in set(frame.observed)
    assert set(frame.status) <= {"open", "reopened"}


def test_the_xlsx_worklist_holds_formulas_as_text(site_with_queries):
    registry, folders = site_with_queries
    book = openpyxl.load_workbook(folders.worklists / "S01" / "queries.xlsx")
    sheet = book["Queries"]
    header = [c.value for c in sheet[1]]
    observed = [row[header.index("observed")] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert '=HYPERLINK("http://x")' in observed and "-72.5" in observed
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert "Scorecard" in book.sheetnames


def test_the_html_worklist_is_self_contained_escaped_and_shows_the_scorecard(site_with_queries):
    registry, folders = site_with_queries
    html = (folders.worklists / "S01" / "queries.html").read_text()
    assert "<script" not in html and "http://x\"" not in html and "&#34;http://x&#34;" in html
    assert "Case S01-00006" in html and "Scorecard" in html and "first period" in html


def test_cqi_queries_prints_the_site_worklist_as_a_table_or_csv(site_with_queries):
    runner = CliRunner()
    table = runner.invoke(app, ["queries", "--site", "S01"])
    assert table.exit_code == 0, table.output
    assert "S01-00006" in table.output and "blocking" in table.output
    as_csv = runner.invoke(app, ["queries", "--site", "S01", "--format", "csv"])
    assert as_csv.output.startswith("query_id,severity,case_id")
    other = runner.invoke(app, ["queries", "--site", "S02"])
    assert other.exit_code == 0 and "no open data queries" in other.output


def test_cqi_override_leaves_a_request_with_the_unneutralised_value_for_the_next_run(site_with_queries):
    registry, folders = site_with_queries
    frame = pd.read_csv(folders.worklists / "S01" / "queries.csv", dtype=str, keep_default_na=False)
    target = frame[frame.field == "weight_kg"].iloc[0]
    result = CliRunner().invoke(app, ["override", target.query_id, "--reason", "amputee, weighed on ward",
                                      "--author", "CC nurse"])
    assert result.exit_code == 0, result.output
    requests = list((folders.data_dir / "overrides").glob("*.json"))
    assert len(requests) == 1
    assert json.loads(requests[0].read_text())["observed"] == "-72.5"
    unknown = CliRunner().invoke(app, ["override", "Q-0000000000000000", "--reason", "x", "--author", "y"])
    assert unknown.exit_code == 2
