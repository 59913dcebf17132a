"""Formula injection: text a spreadsheet would run is neutralised, numbers stay numbers."""

import csv
import io

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pytest

from orchestration.publish.safe_cells import (
    is_dangerous, neutralise, neutralise_frame, neutralise_row, neutralise_sql, restore,
)

HOSTILE = ["=cmd|'/c calc'!A1", "+SUM(1)", "-2+3", "@foo", "\t=1+1", "\r=1+1", "=HYPERLINK(\"http://x\")", "＝1+1"]
HARMLESS = ["ok", "a=b", "", " =1", "-1.5", "+3", "-2e-3", "1,5", "S01-00001"]


@pytest.mark.parametrize("text", HOSTILE)
def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(text):
    assert neutralise(text) == "'" + text and restore(neutralise(text)) == text


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_and_plain_number_literals_are_left_alone(text):
    assert neutralise(text) == text and not is_dangerous(text)


def test_numbers_dates_and_missing_values_are_never_touched():
    values = [-1.5, -3, np.float64(-2.0), pd.Timestamp("2025-01-01"), None, np.nan, True]
    assert neutralise_row(values)[:5] == values[:5]


def test_a_frame_has_its_text_cells_and_headers_neutralised_and_its_numbers_kept():
    frame = pd.DataFrame({
        "text": HOSTILE[:4] + ["ok"],
        "number": [-1.5, -2.0, 3.0, np.nan, 5.0],
        "mixed": [-1, "=1+1", None, "-7", 2.5],
        "@header": ["a"] * 5,
    })
    frame["category"] = pd.Categorical(["=x", "y", "=x", "y", "y"])
    out = neutralise_frame(frame)
    assert list(out.text) == ["'" + t for t in HOSTILE[:4]] + ["ok"]
    assert out.number.dtype == frame.number.dtype and out.number.equals(frame.number)
    assert list(out.mixed)[:2] == [-1, "'=1+1"] and list(out.mixed)[3:] == ["-7", 2.5]
    assert list(out.category) == ["'=x", "y", "'=x", "y", "y"]
    assert list(out.columns) == ["text", "number", "mixed", "'@header", "category"]
    assert list(frame.text) == HOSTILE[:4] + ["ok"], "the input frame is not changed"


def test_a_neutralised_frame_written_to_csv_and_xlsx_holds_no_formula(tmp_path):
    frame = neutralise_frame(pd.DataFrame({"value": HOSTILE, "n": range(len(HOSTILE))}))
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows([list(frame.columns), *frame.itertuples(index=False)])
    cells = [row[0] for row in csv.reader(io.StringIO(buffer.getvalue(), newline=""))][1:]
    assert len(cells) == len(HOSTILE)
    assert not any(is_dangerous(c) for c in cells)
    path = tmp_path / "out.xlsx"
    frame.to_excel(path, index=False, engine="openpyxl")
    sheet = openpyxl.load_workbook(path).active
    kinds = {cell.data_type for row in sheet.iter_rows(min_row=2, max_col=1) for cell in row}
    assert kinds == {"s"}, "every hostile cell is stored as text, none as a formula"
    raw = pd.DataFrame({"value": HOSTILE})
    raw.to_excel(tmp_path / "raw.xlsx", index=False, engine="openpyxl")
    raw_kinds = {c.data_type for r in openpyxl.load_workbook(tmp_path / "raw.xlsx").active.iter_rows(min_row=2)
                 for c in r}
    assert "f" in raw_kinds, "without neutralising, the writer would have stored formulas"


def test_the_sql_form_agrees_with_the_python_form():
    texts = HOSTILE + HARMLESS
    sql = f"select {neutralise_sql('x')} from (select unnest(?) as x, generate_subscripts(?, 1) as i) order by i"
    got = [r[0] for r in duckdb.execute(sql, [texts, texts]).fetchall()]
    assert got == [neutralise(t) for t in texts]
