"""Batched intake: loading a run's files together gives exactly what loading them one by one gives.

The intake asset loads every file of a run in one SQL pass (orchestration/
intake/batch.py); tests elsewhere mostly load one file at a time. These
tests prove the two agree on every receipt, row, lineage and finding, on the
synthetic collaborative with its problem files, and that a file DuckDB
cannot parse in a shared scan is still rejected with its own reason.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from orchestration.intake.archive import archive_file
from orchestration.intake.receive import load_archived, load_archived_files
from orchestration.settings import Paths
from orchestration.synth import generate_collaborative
from support import SECRET, clean_row, demo_registry, site_file, warehouse, write_csv


@pytest.fixture(scope="module")
def registry():
    return demo_registry()


@pytest.fixture(scope="module")
def collaborative(registry, tmp_path_factory):
    root = tmp_path_factory.mktemp("collaborative")
    generate_collaborative(registry, root, cases=2400, sites=6, periods=2, seed=11)
    files = sorted(p for p in (root / "landing").rglob("*") if p.is_file())
    assert {p.suffix for p in files} >= {".csv", ".xlsx"}
    return files


def archive_all(folders: Paths, files):
    return [archive_file(path, path.parent.name, folders.archive) for path in files]


def snapshot(folders: Paths, registry, receipts):
    """Everything intake wrote, with paths made relative to the data folder."""
    columns = ", ".join(f'"{c.name}"' for c in registry.warehouse_columns)
    with warehouse(folders, registry) as con:
        cases = con.execute(f"select {columns}, submission_id, file_checksum, row_number, period from raw.cases "
                            "order by submission_id, row_number").fetchall()
        findings = con.execute("select * from intake.cell_findings order by all").fetchall()
        ledger = con.execute("select * exclude (receipt_path, received_at) from intake.submissions "
                             "order by sequence").fetchall()
        current = con.execute("select * from intake.current_submission_periods order by all").fetchall()
    shown = [dataclasses.replace(r, received_at="") for r in receipts]
    return cases, findings, ledger, current, shown


def load_one_by_one(folders, registry, archived):
    with warehouse(folders, registry) as con:
        return [load_archived(con, registry, folders, a, SECRET) for a in archived]


def load_together(folders, registry, archived, **options):
    with warehouse(folders, registry) as con:
        return load_archived_files(con, registry, folders, archived, SECRET, **options)


def test_a_batch_loads_exactly_what_files_loaded_one_by_one_load(registry, collaborative, tmp_path):
    alone, together, small = (Paths(tmp_path / name).ensure() for name in ("alone", "together", "small"))
    expected = snapshot(alone, registry, load_one_by_one(alone, registry, archive_all(alone, collaborative)))
    batched = snapshot(together, registry, load_together(together, registry, archive_all(together, collaborative)))
    chunked = snapshot(small, registry, load_together(small, registry, archive_all(small, collaborative),
                                                      max_bytes=40_000))
    statuses = {r.status for r in expected[4]}
    assert {"accepted", "accepted_with_findings", "rejected"} <= statuses   # the problem files are in
    assert len(expected[0]) > 1500 and expected[1]
    for name, got in (("one batch", batched), ("several batches", chunked)):
        for part, want, have in zip(("cases", "findings", "ledger", "current", "receipts"), expected, got):
            assert have == want, f"{name}: {part} differ"


def test_row_numbers_and_lineage_follow_each_file_in_a_shared_scan(registry, tmp_path):
    folders = Paths(tmp_path / "data").ensure()
    files = [site_file(registry, folders.landing, f"S0{i}", cases=n) for i, n in ((1, 3), (2, 7), (3, 1), (4, 5))]
    with warehouse(folders, registry) as con:
        receipts = load_archived_files(con, registry, folders, archive_all(folders, files), SECRET)
        rows = con.execute("select site_id, case_id, row_number, file_checksum from raw.cases").fetchall()
    assert [r.status for r in receipts] == ["accepted"] * 4
    for path, receipt in zip(files, receipts):
        lines = path.read_text().splitlines()[1:]
        mine = sorted((r[2], r[1]) for r in rows if r[3] == receipt.file_checksum)
        assert mine == [(i + 1, line.split(",")[0]) for i, line in enumerate(lines)]


def test_a_file_that_breaks_a_shared_scan_is_rejected_alone_with_its_reason(registry, tmp_path):
    folders = Paths(tmp_path / "data").ensure()
    good = [site_file(registry, folders.landing, site, cases=4) for site in ("S01", "S02")]
    broken = site_file(registry, folders.landing / "bad", "S03", cases=4)
    lines = broken.read_text().splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\r\n") + ",extra,fields\r\n"      # more fields than the header
    broken.write_text("".join(lines))
    files = [good[0], broken, good[1]]
    archived = [archive_file(p, s, folders.archive) for p, s in zip(files, ("S01", "S03", "S02"))]
    with warehouse(folders, registry) as con:
        receipts = load_archived_files(con, registry, folders, archived, SECRET)
        loaded = dict(con.execute("select site_id, count(*) from raw.cases group by 1").fetchall())
    assert [r.status for r in receipts] == ["accepted", "rejected", "accepted"]
    assert "line 3 has more fields than the header" in receipts[1].reason
    assert loaded == {"S01": 4, "S02": 4}


def test_a_resubmission_in_the_same_batch_supersedes_and_a_repeat_is_a_duplicate(registry, tmp_path):
    folders = Paths(tmp_path / "data").ensure()
    first = site_file(registry, folders.landing / "a", "S01", cases=4)
    second = folders.landing / "b" / "S01" / first.name
    second.parent.mkdir(parents=True)
    write_csv(second, [clean_row(registry, "S01", n) for n in range(1, 7)])
    repeat = folders.landing / "c" / "S01" / first.name
    repeat.parent.mkdir(parents=True)
    shutil.copyfile(first, repeat)
    archived = [archive_file(p, "S01", folders.archive) for p in (first, second, repeat)]
    with warehouse(folders, registry) as con:
        receipts = load_archived_files(con, registry, folders, archived, SECRET)
        current = con.execute("select distinct submission_id from intake.current_submission_periods").fetchall()
        sequences = con.execute("select submission_id from intake.submissions order by sequence").fetchall()
    assert [r.status for r in receipts] == ["accepted", "accepted", "duplicate"]
    assert current == [(receipts[1].submission_id,)]
    assert [s[0] for s in sequences] == [receipts[0].submission_id, receipts[1].submission_id]
