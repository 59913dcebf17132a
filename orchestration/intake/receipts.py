"""Receipts: the answer every submitted file gets, for machines and people.

The JSON receipt is the complete record; the text receipt says the same in
the words an abstractor reads: what arrived, what was loaded, what to fix.

Everything a site chose (its file name, its headers, its cell values) appears
in the text receipt quoted and escaped (``repr``), so a name with a line
break cannot forge a line of the receipt and a cell such as ``=cmd|'/c calc'!A1``
reads as the harmless text it is. Receipts are JSON and plain text, never a
spreadsheet; the CSV and XLSX the project writes neutralise such cells with
``orchestration.publish.safe_cells``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUS_WORDS = {
    "accepted": "Accepted: every row was loaded and no cell needs attention.",
    "accepted_with_findings": "Accepted with findings: rows were loaded; the cells listed below need correcting.",
    "rejected": "Rejected: nothing from this file was loaded. Fix the reason below and send the file again.",
    "duplicate": "Duplicate: these exact bytes were received before; nothing was loaded twice.",
}


@dataclass
class Receipt:
    submission_id: str
    site_id: str
    original_name: str
    file_checksum: str
    size_bytes: int
    received_at: str
    status: str
    reason: str | None = None
    rows_received: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    periods: list[str] = field(default_factory=list)
    file_format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    unknown_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)   # row_number, field, value, problem
    notes: list[str] = field(default_factory=list)        # about the file as a whole (sheets, formulas, ...)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    def to_text(self) -> str:
        lines = [
            f"Receipt for {_shown(self.original_name)} from site {self.site_id}",
            f"Submission {self.submission_id}, received {self.received_at} UTC",
            f"SHA-256 {self.file_checksum} ({self.size_bytes} bytes)",
            "",
            STATUS_WORDS.get(self.status, self.status),
        ]
        if self.reason:
            lines.append(f"Reason: {self.reason}")
        lines += [
            "",
            f"Rows received: {self.rows_received}",
            f"Rows loaded:   {self.rows_loaded}",
            f"Rows rejected: {self.rows_rejected}",
        ]
        if self.periods:
            lines.append(f"Periods: {', '.join(self.periods)}")
        if self.unknown_columns:
            lines.append("Columns not in the data dictionary (ignored): "
                         + ", ".join(_shown(c) for c in self.unknown_columns))
        for note in self.notes:
            lines.append(f"Note: {note}")
        if self.problems:
            lines += ["", "Problems (row is the data row, counting from 1 below the header):"]
            for problem in self.problems:
                value = "" if problem.get("value") is None else f" (value {_shown(problem['value'])})"
                lines.append(f"  row {problem['row_number']}, {problem['field']}: {problem['problem']}{value}")
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> Path:
        """Write ``<submission>.json`` and ``.txt`` under ``folder/<site>/``."""
        target = folder / self.site_id
        target.mkdir(parents=True, exist_ok=True)
        stem = f"{self.submission_id}" if self.status != "duplicate" else f"{self.submission_id}.duplicate"
        json_path = target / f"{stem}.json"
        json_path.write_text(self.to_json(), encoding="utf-8")
        (target / f"{stem}.txt").write_text(self.to_text(), encoding="utf-8", errors="backslashreplace")
        return json_path


def _shown(text: object, limit: int = 200) -> str:
    """Site-chosen text, quoted and escaped for a line of the text receipt."""
    text = str(text)
    return repr(text[:limit]) + (f" (… {len(text)} characters)" if len(text) > limit else "")
