"""Intake: archive first, read any dialect, map headers, cast, pseudonymise, receipt."""

import hashlib
import hmac
import json

import openpyxl
import pytest

from orchestration.intake import receive_file
from orchestration.settings import Paths
from support import SECRET, clean_row, demo_registry, site_file, warehouse, write_csv


@pytest.fixture
def registry():
    return demo_registry()


@pytest.fixture
def folders(tmp_path):
    return Paths(tmp_path / "data").ensure()


def receive(folders, registry, path, site_id):
    with warehouse(folders, registry) as con:
        return receive_file(con, registry, folders, path, site_id, SECRET)


def query(folders, sql, params=None):
    from orchestration.warehouse import connect
    with connect(folders.warehouse, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_file_is_archived_unchanged_with_its_metadata(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=5)
    original = path.read_bytes()
    receipt = receive(folders, registry, path, "S01")
    archived = list(folders.archive.rglob(f"{receipt.file_checksum}.csv"))
    assert archived and archived[0].read_bytes() == original
    sidecar = json.loads(archived[0].with_name(archived[0].name + ".json").read_text().splitlines()[0])
    assert sidecar["site_id"] == "S01" and sidecar["original_name"] == path.name
    assert sidecar["size_bytes"] == len(original)
    assert receipt.file_checksum == hashlib.sha256(original).hexdigest()


def test_the_same_bytes_twice_are_a_duplicate_and_load_once(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=5)
    first = receive(folders, registry, path, "S01")
    second = receive(folders, registry, path, "S01")
    assert (first.status, second.status) == ("accepted", "duplicate")
    assert query(folders, "select count(*) from raw.cases") == [(5,)]
    assert query(folders, "select outcome from intake.receptions order by received_at") == [
        ("processed",), ("duplicate",)]


def test_direct_identifiers_become_keyed_hashes_and_an_age(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=2)
    receive(folders, registry, path, "S01")
    key, name_key, age = query(folders, "select patient_key, patient_name_key, age_years from raw.cases "
                                        "where case_id = 'S01-00001'")[0]
    assert key == hmac.new(SECRET, b"MRNS01000001", hashlib.sha256).hexdigest()
    assert name_key == hmac.new(SECRET, b"Patient 1", hashlib.sha256).hexdigest()
    assert age == 74  # born 1950-06-15, operated 2025-02-02
    columns = {r[0] for r in query(folders, "select column_name from information_schema.columns "
                                            "where table_name = 'cases'")}
    assert not columns & {"medical_record_number", "patient_name", "date_of_birth"}


def test_a_latin1_semicolon_file_with_alias_headers_loads(folders, registry):
    rows = [clean_row(registry, "S02", i) for i in range(1, 4)]
    rows[0]["patient_name"] = "Zoë Ångström"
    renamed = [{("MRN" if k == "medical_record_number" else "Gender" if k == "sex" else k.upper()): v
                for k, v in row.items()} for row in rows]
    path = write_csv(folders.landing / "S02" / "S02_2025Q1.csv", renamed, delimiter=";", encoding="latin-1")
    receipt = receive(folders, registry, path, "S02")
    assert receipt.status == "accepted", receipt.reason
    assert (receipt.encoding, receipt.delimiter, receipt.rows_loaded) == ("latin-1", ";", 3)
    expected = hmac.new(SECRET, "Zoë Ångström".encode(), hashlib.sha256).hexdigest()
    assert query(folders, "select patient_name_key from raw.cases where case_id = 'S02-00001'") == [(expected,)]


def test_a_byte_order_mark_does_not_hide_the_first_header(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=3)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    receipt = receive(folders, registry, path, "S01")
    assert receipt.status == "accepted" and receipt.encoding == "utf-8-sig"
    assert receipt.unknown_columns == []


def test_an_excel_workbook_loads_like_a_csv(folders, registry):
    rows = [clean_row(registry, "S03", i) for i in range(1, 6)]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    path = folders.landing / "S03" / "S03_2025Q1.xlsx"
    path.parent.mkdir(parents=True)
    book.save(path)
    receipt = receive(folders, registry, path, "S03")
    assert receipt.status == "accepted", receipt.reason
    assert receipt.rows_loaded == 5 and receipt.file_format == "xlsx"


def test_a_missing_required_column_rejects_the_file_and_quarantines_it(folders, registry):
    rows = [clean_row(registry, "S01", i) for i in range(1, 4)]
    fields = [f for f in rows[0] if f != "asa_class"]
    path = write_csv(folders.landing / "S01" / "S01_2025Q1.csv", rows, fieldnames=fields)
    receipt = receive(folders, registry, path, "S01")
    assert receipt.status == "rejected"
    assert "required columns are missing: asa_class" in receipt.reason
    assert query(folders, "select count(*) from raw.cases") == [(0,)]
    quarantined = list((folders.quarantine / "S01").iterdir())
    assert any(p.name.endswith("S01_2025Q1.csv") for p in quarantined)
    assert "asa_class" in (folders.receipts / "S01" / f"{receipt.submission_id}.txt").read_text()


def test_rows_naming_another_site_reject_the_whole_file(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=4, row2={"site_id": "S07"})
    receipt = receive(folders, registry, path, "S01")
    assert receipt.status == "rejected" and "another site (S07)" in receipt.reason
    assert query(folders, "select count(*) from raw.cases") == [(0,)]


def test_a_cell_that_cannot_be_cast_is_a_finding_on_its_row_not_a_crash(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=4,
                     row1={"albumin": "abc"}, row3={"operation_minutes": "12.5", "admission_date": "2025-13-45"})
    receipt = receive(folders, registry, path, "S01")
    assert receipt.status == "accepted_with_findings" and receipt.rows_loaded == 4
    problems = {(p["row_number"], p["field"], p["value"]) for p in receipt.problems}
    assert problems == {(2, "albumin", "abc"), (4, "operation_minutes", "12.5"), (4, "admission_date", "2025-13-45")}
    assert query(folders, "select albumin from raw.cases where row_number = 2") == [(None,)]


def test_a_row_without_case_number_is_rejected_and_reported(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=3, row1={"case_id": ""})
    receipt = receive(folders, registry, path, "S01")
    assert (receipt.rows_received, receipt.rows_loaded, receipt.rows_rejected) == (3, 2, 1)
    assert any(p["field"] == "case_id" and p["row_number"] == 2 for p in receipt.problems)


def test_loaded_rows_carry_submission_checksum_and_row_number(folders, registry):
    path = site_file(registry, folders.landing, "S01", cases=3)
    receipt = receive(folders, registry, path, "S01")
    rows = query(folders, "select distinct submission_id, file_checksum from raw.cases")
    assert rows == [(receipt.submission_id, receipt.file_checksum)]
    assert query(folders, "select list(row_number order by row_number) from raw.cases") == [([1, 2, 3],)]


def test_a_resubmission_replaces_its_period_and_keeps_every_version(folders, registry):
    first = receive(folders, registry, site_file(registry, folders.landing, "S01", cases=5), "S01")
    corrected = site_file(registry, folders.landing, "S01", cases=4, name="S01_2025Q1_v2.csv",
                          row0={"albumin": "3.9"})
    second = receive(folders, registry, corrected, "S01")
    current = query(folders, "select submission_id from intake.current_submission_periods "
                             "where site_id = 'S01' and period = '2025Q1'")
    assert current == [(second.submission_id,)]
    assert query(folders, "select submission_id, count(*) from raw.cases group by 1 order by 2 desc") == [
        (first.submission_id, 5), (second.submission_id, 4)]


def test_a_parquet_file_loads_with_its_typed_columns_read_as_text(folders, registry):
    import pandas as pd

    rows = pd.DataFrame([clean_row(registry, "S04", i) for i in range(1, 4)])
    rows["albumin"] = [3.5, None, 4.25]
    path = folders.landing / "S04" / "S04_2025Q1.parquet"
    path.parent.mkdir(parents=True)
    rows.to_parquet(path)
    receipt = receive(folders, registry, path, "S04")
    assert receipt.status == "accepted", receipt.reason
    assert query(folders, "select list(albumin order by row_number) from raw.cases") == [([3.5, None, 4.25],)]


def test_an_unknown_file_type_is_rejected_with_what_to_send(folders, registry):
    path = folders.landing / "S01" / "cases.docx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not a table")
    receipt = receive(folders, registry, path, "S01")
    assert receipt.status == "rejected" and "send CSV, XLSX or Parquet" in receipt.reason
    assert list(folders.archive.rglob("*.docx")), "even a rejected file is archived"
