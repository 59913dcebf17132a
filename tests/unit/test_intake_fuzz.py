"""Property-based fuzzing of CSV intake: whatever bytes arrive, intake answers with a receipt.

Submissions are random bytes, or CSV-ish text built from the dictionary's
names and aliases (random case and spacing, unknown and blank headers), with
random delimiters, quoting, line endings, encodings and cells that mix good
values with hostile ones. Properties: ``receive_file`` never raises; the
status is one of the four; an accepted file accounts for every row; a
rejected one loads nothing; the archive holds the bytes unchanged.

Runs ``CQI_FUZZ_EXAMPLES`` examples (30 by default, in the suite);
``CQI_FUZZ_EXAMPLES=2000 pytest tests/unit/test_intake_fuzz.py`` fuzzes longer.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import SECRET, clean_row, demo_registry, warehouse

from orchestration.intake import receive_file
from orchestration.settings import Paths

EXAMPLES = int(os.environ.get("CQI_FUZZ_EXAMPLES", "30"))
STATUSES = {"accepted", "accepted_with_findings", "rejected", "duplicate"}
REGISTRY = demo_registry()
SPELLINGS = sorted({s for v in REGISTRY.variables for s in (v.name, *v.aliases)})
NASTY_CELLS = ["", " ", "\t", '"', '""', "'", ",", ";", "|", "\n", "\r\n", "NaN", "inf", "-Infinity", "1,234.5",
               "3,5", "2025-02-30", "15/03/2025", "45703", "=cmd|'/c calc'!A1", "+SUM(1)", "@foo", "\x00",
               "\ufeff", "Zoë", "日本", "\U0001f600", "S07", "-1", "1e309", "x" * 300]


def header_spelling(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.upper(), name.replace("_", " "), f" {name} ", name.title()])


@st.composite
def csvish(draw) -> bytes:
    """CSV-like text: mostly the dictionary's columns, some mangled, cells good or hostile."""
    names = [v.name for v in REGISTRY.variables]
    kept = names if draw(st.integers(0, 3)) else \
        draw(st.lists(st.sampled_from(names), min_size=0, max_size=len(names), unique=True))
    extra = draw(st.lists(st.one_of(st.sampled_from(SPELLINGS), st.text(max_size=12), st.just("")), max_size=3)) \
        if draw(st.integers(0, 2)) == 0 else []
    header = [draw(header_spelling(n)) for n in kept] + extra
    draw(st.randoms()).shuffle(header)
    count = draw(st.integers(min_value=0, max_value=6))
    base = [clean_row(REGISTRY, "S01", i) for i in range(1, count + 1)]
    cells = st.one_of(st.sampled_from(NASTY_CELLS), st.text(max_size=20))
    table = []
    for row in base:
        values = [row.get(h.strip().lower().replace(" ", "_"), "") for h in header]
        values = [draw(cells) if draw(st.integers(0, 59)) == 0 else v for v in values]
        if draw(st.integers(0, 9)) == 0:
            values = values[: draw(st.integers(0, len(values)))] + draw(st.lists(cells, max_size=3))
        table.append(values)
    delimiter = draw(st.sampled_from([",", ";", "\t", "|", ":"]))
    quote_all = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))

    def cell(value: str) -> str:
        needs = quote_all or any(c in value for c in (delimiter, '"', "\n", "\r"))
        if needs and draw(st.integers(0, 19)):          # now and then a value is left unquoted anyway
            return '"' + value.replace('"', '""') + '"'
        return value

    endings = itertools.cycle(["\r\n", "\n", "\r"] if newline == "mixed" else [newline])
    lines = [delimiter.join(cell(v) for v in values) for values in [header, *table]]
    text = "".join(line + next(endings) for line in lines)
    if draw(st.integers(0, 3)) == 0:
        text = text[: draw(st.integers(0, len(text)))]     # cut anywhere
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le", "cp1252"]))
    return text.encode(encoding, errors="replace")


submissions = st.one_of(st.binary(max_size=2048), csvish())


def test_csv_intake_always_answers_with_a_receipt_and_keeps_the_original():
    with tempfile.TemporaryDirectory(prefix="cqi-fuzz-") as tmp:
        folders = Paths(Path(tmp) / "data").ensure()
        inbox = Path(tmp) / "inbox" / "S01"
        inbox.mkdir(parents=True)
        counter = itertools.count()
        with warehouse(folders, REGISTRY) as con:

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(payload=submissions, suffix=st.sampled_from([".csv", ".txt", ".tsv", ""]))
            def receive_any(payload: bytes, suffix: str) -> None:
                path = inbox / f"S01_2025Q1_{next(counter)}{suffix}"
                path.write_bytes(payload)
                receipt = receive_file(con, REGISTRY, folders, path, "S01", SECRET)
                assert receipt.status in STATUSES
                if receipt.status in ("accepted", "accepted_with_findings"):
                    assert receipt.rows_loaded + receipt.rows_rejected == receipt.rows_received
                    loaded = con.execute("select count(*) from raw.cases where submission_id = ?",
                                         [receipt.submission_id]).fetchone()[0]
                    assert loaded == receipt.rows_loaded
                elif receipt.status == "rejected":
                    assert receipt.reason and receipt.rows_loaded == 0
                digest = hashlib.sha256(payload).hexdigest()
                assert receipt.file_checksum == digest
                archived = [p for p in folders.archive.rglob(f"{digest}*") if not p.name.endswith(".json")]
                assert archived and all(p.read_bytes() == payload for p in archived)

            receive_any()
