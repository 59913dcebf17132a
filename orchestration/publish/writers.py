"""Writing tables that leave the coordinating centre: CSV and XLSX, injection-safe.

Every text cell is neutralised against formula injection before it is
written (orchestration/publish/safe_cells.py), and files are written to a
temporary name and renamed, so a reader never sees half a file. Workbooks
are written by orchestration/publish/xlsx.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from .safe_cells import neutralise_frame

DECIMALS = 6   # published precision: also hides last-digit noise of parallel sums and optimisers


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """Floats to DECIMALS places (in mixed columns too), so reruns give the same bytes."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column].dtype):
            out[column] = out[column].round(DECIMALS)
        elif out[column].dtype == object:
            out[column] = out[column].map(lambda v: round(v, DECIMALS) if isinstance(v, float) else v)
    return out


def prepare_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A table as it is published: floats rounded, text cells neutralised."""
    return neutralise_frame(_rounded(frame))


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    prepare_frame(frame).to_csv(partial, index=False, lineterminator="\n")
    partial.replace(path)
    return path


def write_xlsx(sheets: dict[str, pd.DataFrame], path: Path) -> Path:
    """One workbook, a sheet per frame (orchestration/publish/xlsx.py: fixed properties, reproducible)."""
    from .xlsx import Cells, Sheet, write_workbook

    return write_workbook({name: Sheet.of(Cells(prepare_frame(frame))) for name, frame in sheets.items()}, path)


def write_text(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
