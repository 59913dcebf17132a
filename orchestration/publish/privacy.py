"""Privacy checks on a built publication, before it is released.

1. No site package names another site or holds another site's cases: no
   other site's code or display name, and no case number of another site,
   appears in any file of the package (XLSX files are read inside their zip).
2. No direct identifier: no column named as a dictionary direct identifier
   or its pseudonym, and no pseudonymised patient key, appears in any
   published file.
3. No published count from 1 to the small-cell threshold in any table of a
   site package.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..registry import Registry

COUNT_COLUMNS = ("cases", "observed")
HEX_TOKEN = re.compile(r"\b[0-9a-f]{64}\b")


def _file_text(path: Path) -> str:
    """The text a reader sees: for a workbook, its cell values (not cell addresses such as S10)."""
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            return "\n".join("\t".join("" if v is None else str(v) for v in row)
                             for sheet in book.worksheets for row in sheet.iter_rows(values_only=True))
        finally:
            book.close()
    return path.read_text(encoding="utf-8", errors="replace")


def _word(text: str) -> re.Pattern:
    return re.compile(r"(?<![A-Za-z0-9])" + re.escape(text) + r"(?![A-Za-z0-9])")


def cross_site_leaks(folder: Path, sites: pd.DataFrame, case_ids: pd.DataFrame) -> list[str]:
    """Problems of kind 1: a package that reveals another site."""
    problems = []
    packages = folder / "sites"
    for package in sorted(p for p in packages.iterdir() if p.is_dir()) if packages.is_dir() else []:
        own = package.name
        others = sites[sites["site_id"] != own]
        patterns = [(_word(s), f"site {s}") for s in others["site_id"]]
        patterns += [(_word(n), f"the name of site {s}") for s, n in zip(others["site_id"], others["display_name"])]
        foreign_cases = set(case_ids.loc[case_ids["site_id"] != own, "case_id"])
        for path in sorted(package.rglob("*")):
            if not path.is_file():
                continue
            text = _file_text(path)
            for pattern, what in patterns:
                if pattern.search(text):
                    problems.append(f"{path.relative_to(folder)} reveals {what}")
            tokens = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9_\-]{2,}", text))
            leaked = tokens & foreign_cases
            if leaked:
                problems.append(f"{path.relative_to(folder)} holds another site's cases ({sorted(leaked)[:3]})")
    return problems


def identifier_leaks(folder: Path, registry: Registry, patient_keys: set[str]) -> list[str]:
    """Problems of kind 2: a direct identifier, or a pseudonym of one, in any published file."""
    banned = {v.name for v in registry.direct_identifiers} | {v.pseudonymise.output for v in registry.direct_identifiers}
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "inputs" not in p.relative_to(folder).parts):
        text = _file_text(path)
        named = [name for name in banned if _word(name).search(text)]
        if named:
            problems.append(f"{path.relative_to(folder)} has identifier columns {sorted(named)}")
        if set(HEX_TOKEN.findall(text)) & patient_keys:
            problems.append(f"{path.relative_to(folder)} holds pseudonymised patient keys")
    return problems


def small_count_leaks(folder: Path, threshold: int) -> list[str]:
    """Problems of kind 3: a count from 1 to ``threshold`` in a site package's table."""
    problems = []
    for path in sorted((folder / "sites").rglob("*.csv")) if (folder / "sites").is_dir() else []:
        frame = pd.read_csv(path, dtype=str)
        for column in COUNT_COLUMNS:
            if column in frame:
                values = pd.to_numeric(frame[column], errors="coerce")
                if ((values >= 1) & (values <= threshold)).any():
                    problems.append(f"{path.relative_to(folder)} publishes a {column} count from 1 to {threshold}")
    return problems
