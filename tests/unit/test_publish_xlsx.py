"""The fast workbook writer writes, cell for cell, what xlsxwriter writes for the same tables."""

from __future__ import annotations

import datetime as dt
import math
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import xlsxwriter

from orchestration.publish.xlsx import Cells, Sheet, SheetRows, write_workbook


def _frames() -> dict[str, pd.DataFrame]:
    results = pd.DataFrame({
        "period": pd.array(["2025Q1", "2025Q2", None], dtype="str"),
        "cases": [120.0, np.nan, 3.5e17],
        "observed": pd.Series(["<=10", 12.0, "suppressed"], dtype=object),
        "oe": [0.092688, math.inf, -math.inf],
        "is_positive_deviant": [True, False, True],
        "open_queries": np.array([0, 7, 12], dtype="int64"),
        "note": [" lead", "a & <b>", "ctl\x01_x0041_"],
        "empty": [np.nan, np.nan, np.nan],
    })
    events = pd.DataFrame({"case_key": ["C1", "C2"],
                           "operation_date": pd.to_datetime(["2025-01-02 00:00", "2025-03-04 06:30"]).as_unit("us")})
    repeated = pd.DataFrame({"measure": pd.Categorical(["m", "k", "m", "m"]),
                             "site": pd.array(["S1", None, "S1", "S2 "], dtype="str"),
                             "when": pd.to_datetime(["2025-01-02", None, "2025-01-02", "2025-02-01"]).as_unit("us"),
                             "rate": [-0.0, np.nan, 0.0, 0.0]})
    return {"my_results": results, "events": events, "repeated": repeated, "no_rows": results.iloc[:0]}


def _xlsxwriter_oracle(frames: dict[str, pd.DataFrame], path) -> None:
    """xlsxwriter in constant_memory mode, fed what pandas' ExcelFormatter feeds it, row by row."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                           "strings_to_urls": False})
    book.set_properties({"created": dt.datetime(2000, 1, 1)})
    date = None
    for name, frame in frames.items():
        sheet = book.add_worksheet(name)
        for col, column in enumerate(frame.columns):
            sheet.write(0, col, str(column))
        for row, values in enumerate(frame.itertuples(index=False), start=1):
            for col, value in enumerate(values):
                if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
                    continue
                if isinstance(value, float) and math.isinf(value):
                    value = "inf" if value > 0 else "-inf"
                if isinstance(value, dt.datetime):
                    date = date or book.add_format({"num_format": "YYYY-MM-DD HH:MM:SS"})
                    sheet.write_datetime(row, col, value, date)
                elif isinstance(value, (bool, np.bool_)):
                    sheet.write_boolean(row, col, bool(value))
                elif isinstance(value, (int, float, np.integer, np.floating)):
                    sheet.write_number(row, col, value)
                else:
                    sheet.write_string(row, col, str(value))
    book.close()


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def test_every_part_of_the_workbook_equals_what_xlsxwriter_writes(tmp_path):
    frames = _frames()
    ours = write_workbook({name: Sheet.of(Cells(frame)) for name, frame in frames.items()}, tmp_path / "ours.xlsx")
    _xlsxwriter_oracle(frames, tmp_path / "oracle.xlsx")
    expected = _members(tmp_path / "oracle.xlsx")
    got = _members(ours)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name] == expected[name], name


def test_a_shared_sheet_with_swapped_rows_equals_the_sheet_built_for_the_site(tmp_path):
    peers = pd.DataFrame({"site": [f"P-{i}" for i in range(150)], "oe": np.linspace(0.5, 1.5, 150)})
    mine = peers.assign(site=peers["site"] + " (you)")
    shared = SheetRows(Cells(peers), Cells(mine))     # three compressed blocks of rows
    direct = peers.copy()
    direct.loc[[2, 100], "site"] = ["P-2 (you)", "P-100 (you)"]
    a = write_workbook({"comparison": shared.sheet([2, 100])}, tmp_path / "a.xlsx")
    b = write_workbook({"comparison": Sheet.of(Cells(direct))}, tmp_path / "b.xlsx")
    assert _members(a) == _members(b)
    rows = list(openpyxl.load_workbook(a, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[0] == ("site", "oe") and rows[3] == ("P-2 (you)", peers["oe"][2]) and rows[101][0] == "P-100 (you)"
    assert len(rows) == 151 and rows[-1] == ("P-149", 1.5)
