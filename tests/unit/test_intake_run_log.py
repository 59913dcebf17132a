"""The intake step's run log: counts, and a line for each file not loaded as sent (bounded)."""

from orchestration.defs.intake.assets import run_log
from orchestration.intake.receipts import Receipt


def _receipt(n: int, status: str, reason: str | None = None) -> Receipt:
    return Receipt(submission_id=f"S01-{n:016x}", site_id="S01", original_name=f"S01_2025Q{n % 4 + 1}_{n}.csv",
                   file_checksum=f"{n:064x}", size_bytes=100, received_at="2026-01-01T00:00:00", status=status,
                   reason=reason)


def test_accepted_files_are_counted_and_files_not_loaded_are_named_with_their_reason():
    receipts = [_receipt(n, "accepted") for n in range(30)] + [_receipt(30, "accepted_with_findings"),
                _receipt(31, "rejected", "required columns are missing: case_id"),
                _receipt(32, "duplicate", "the same bytes were received before from this site")]
    lines = run_log(receipts)
    assert lines[0] == ("info", "33 file(s) received: 30 accepted, 1 accepted with findings, 1 duplicate, "
                                "1 rejected")
    assert lines[1:] == [("warning", "S01/S01_2025Q4_31.csv: rejected (required columns are missing: case_id)"),
                         ("info", "S01/S01_2025Q1_32.csv: duplicate (the same bytes were received before from "
                                  "this site)")]


def test_a_run_of_many_bad_files_names_the_first_and_counts_the_rest():
    receipts = [_receipt(n, "rejected", "the file has a header but no data rows") for n in range(120)]
    lines = run_log(receipts, listed=50)
    assert len(lines) == 1 + 50 + 1
    assert lines[0] == ("info", "120 file(s) received: 120 rejected")
    assert lines[-1] == ("warning", "and 70 more file(s) rejected or duplicated: see each site's receipts")
    assert all(level == "warning" and "no data rows" in text for level, text in lines[1:51])
