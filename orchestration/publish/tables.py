"""A publication's per-site tables, prepared once for every site and cut per site.

Filtering the period's frames site by site (a million case rows, 700
times) and writing each small frame through pandas cost minutes in a
publication of 700 sites. Instead each table is rounded, neutralised and
rendered once for all sites, as CSV lines and as workbook cells, and each
site gets its own rows back by position. A CSV row's text depends only on
its own values (pandas formats cell by cell), so a site's lines are exactly
what writing its own frame gives; where that could differ (a field with a
line break, a date column with times in it) the site's frame is written on
its own instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .writers import prepare_frame
from .xlsx import Cells, Sheet, SheetRows


def _csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def _dates_only(frame: pd.DataFrame) -> bool:
    """Whether every date column holds dates without times (pandas then prints dates the same in any cut)."""
    for i in range(frame.shape[1]):
        column = frame.iloc[:, i]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            values = column.dropna()
            if len(values) and not (values == values.dt.normalize()).all():
                return False
    return True


def csv_lines(prepared: pd.DataFrame) -> tuple[str, list[str]] | None:
    """The header and one line per row, or None when rows cannot be cut out line by line."""
    if not _dates_only(prepared):
        return None
    lines = _csv_text(prepared).split("\n")
    header, body = lines[0], lines[1:-1]
    return (header, body) if len(body) == len(prepared) else None


def site_positions(keys: pd.Series) -> dict[str, np.ndarray]:
    """Row positions of each site, in table order."""
    return {str(k): v for k, v in keys.reset_index(drop=True).groupby(keys.to_numpy(), sort=False).indices.items()}


class SiteTable:
    """One table for all sites (``frame`` in publication shape, ``keys`` the site of each row)."""

    def __init__(self, frame: pd.DataFrame, keys: pd.Series):
        self.prepared = prepare_frame(frame.reset_index(drop=True))
        self.positions = site_positions(keys)
        self.lines = csv_lines(self.prepared)
        self.cells = Cells(self.prepared)

    def _rows(self, site_id: str) -> np.ndarray:
        return self.positions.get(site_id, np.zeros(0, dtype=np.intp))

    def csv(self, site_id: str) -> str:
        rows = self._rows(site_id)
        if self.lines is None:
            return _csv_text(self.prepared.iloc[rows])
        header, body = self.lines
        return "".join([header, "\n", *(body[i] + "\n" for i in rows.tolist())])

    def sheet(self, site_id: str) -> Sheet:
        return Sheet.of(self.cells, self._rows(site_id).tolist())


class SharedTable:
    """A table every site receives whole, with its own rows in a variant (the comparison with peers)."""

    def __init__(self, plain: pd.DataFrame, variant: pd.DataFrame, keys: pd.Series):
        self.plain = prepare_frame(plain.reset_index(drop=True))
        self.variant = prepare_frame(variant.reset_index(drop=True))
        self.positions = site_positions(keys)
        plain_lines, variant_lines = csv_lines(self.plain), csv_lines(self.variant)
        self.lines = (plain_lines, variant_lines) if plain_lines and variant_lines \
            and plain_lines[0] == variant_lines[0] else None
        self.rows = SheetRows(Cells(self.plain), Cells(self.variant))

    def _rows(self, site_id: str) -> list[int]:
        return self.positions.get(site_id, np.zeros(0, dtype=np.intp)).tolist()

    def csv(self, site_id: str) -> str:
        rows = self._rows(site_id)
        if self.lines is None:
            mixed = self.plain.copy()
            mixed.iloc[rows] = self.variant.iloc[rows]
            return _csv_text(mixed)
        (header, plain), (_, variant) = self.lines
        body = list(plain)
        for i in rows:
            body[i] = variant[i]
        return "".join([header, "\n", *(line + "\n" for line in body)])

    def sheet(self, site_id: str) -> Sheet:
        return self.rows.sheet(self._rows(site_id))
