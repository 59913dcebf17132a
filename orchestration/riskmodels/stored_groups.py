"""Site results of each (measure, period) group, kept between builds of the site-result marts.

Why: ``mart_site_results`` and ``mart_funnel_limits`` are rebuilt whole
every cycle, and each (measure, period) group costs about 0.1 s even with
its random-intercept fit read back (stored_fits.py): O/E intervals,
shrinkage on a grid, funnel limits, ranks. When one site resubmits one
quarter, only that quarter's groups have new rows; at M the other 28 of
32 groups were computed again for 3 of the 3.5 seconds.

Safe by construction: a group's key is a digest of every value of its rows
(column names, types and values, in order), of the policy, and of the code
that computes it (``results.py`` and the ``stats`` package, with the
versions of numpy, pandas and scipy). A stored group is used only under
the same key, so it is the frame that would have been computed; a group
whose key is not found is computed. Only the groups a build used are
written back, so the files do not grow.

Stored as two Parquet files in ``.cache/site_result_groups/`` beside the
warehouse: the result rows and the funnel curves, each with its group key.
Each file is replaced atomically; a group is read back only when both of
its parts are found.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

import pandas as pd

FOLDER_NAME = "site_result_groups"
KEY = "_group_key"
HAS_CURVE = "_has_curve"


@cache
def code_digest() -> str:
    """The bytes of the code a group's results come from, and the versions of the libraries it calls."""
    import numpy
    import scipy

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(f"{numpy.__version__}|{pd.__version__}|{scipy.__version__}".encode())
    for path in [package / "riskmodels" / "results.py", *sorted((package / "stats").glob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def group_key(group: pd.DataFrame, policy) -> str:
    """A digest of everything a group's results are computed from: the same key, the same results."""
    return _digest(group, {name: pd.util.hash_pandas_object(column, index=False).to_numpy()
                           for name, column in group.items()}, policy)


def group_keys(frame: pd.DataFrame, by: list[str], policy) -> dict[tuple, str]:
    """:func:`group_key` of each group of ``frame.groupby(by)``, by the group's values of ``by``.

    Row hashes are per value, so each column is hashed once for the whole frame and each group
    takes its rows' hashes: the same keys as hashing group by group, without 30 hashing calls
    per group (0.4 s of each site-results build at state scale)."""
    hashed = {name: pd.util.hash_pandas_object(column, index=False).to_numpy() for name, column in frame.items()}
    return {values if isinstance(values, tuple) else (values,):
            _digest(frame, {name: rows[positions] for name, rows in hashed.items()}, policy, len(positions))
            for values, positions in frame.groupby(by, sort=True).indices.items()}


def _digest(frame: pd.DataFrame, hashes: dict, policy, rows: int | None = None) -> str:
    digest = hashlib.sha256(f"{code_digest()}|{policy!r}|{len(frame) if rows is None else rows}".encode())
    for name, column in frame.items():
        digest.update(f"{name}|{column.dtype}|".encode())
        digest.update(hashes[name].tobytes())
    return digest.hexdigest()


def _read(path: Path) -> pd.DataFrame:
    """A frame written by ``to_parquet``, with its object columns as they were.

    Parquet keeps text, not Python objects: pandas reads an object column of
    text back as its string type, and a missing value as NaN. Each column
    pandas recorded as object is made object again, missing values None.
    """
    import pyarrow.parquet as pq

    frame = pd.read_parquet(path)
    metadata = pq.read_schema(path).pandas_metadata or {}
    for column in metadata.get("columns", []):
        if column.get("numpy_type") == "object" and column.get("name") in frame:
            values = frame[column["name"]].astype(object)
            frame[column["name"]] = values.where(values.notna(), None)
    return frame


class StoredGroups:
    """Group results by :func:`group_key`: ``get`` a (results, curve) pair, ``put`` a new one, ``save`` those used."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._stored: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]] = {}
        self._used: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]] = {}
        try:
            results, curves = (_read(self.folder / f"{name}.parquet") for name in ("results", "curves"))
        except (OSError, ValueError, ImportError):
            return   # missing or unreadable: every group is computed
        curves_by_key = {key: part.drop(columns=KEY).reset_index(drop=True)
                         for key, part in curves.groupby(KEY, sort=False)}
        for key, part in results.groupby(KEY, sort=False):
            has_curve = bool(part[HAS_CURVE].iloc[0])
            if has_curve and key not in curves_by_key:
                continue   # the two files were written by different builds: compute this group
            self._stored[key] = (part.drop(columns=[KEY, HAS_CURVE]).reset_index(drop=True),
                                 curves_by_key.get(key) if has_curve else None)

    @classmethod
    def beside_warehouse(cls, session) -> StoredGroups:
        """The store in ``.cache/`` beside the DuckDB file ``session`` is connected to (a dbt Python model's session)."""
        path = session.execute("select path from duckdb_databases() where database_name = current_database()"
                               ).fetchone()[0]
        return cls(Path(path).parent / ".cache" / FOLDER_NAME)

    @property
    def reused(self) -> int:
        return sum(1 for key in self._used if key in self._stored)

    def get(self, key: str) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
        found = self._used.get(key) or self._stored.get(key)
        if found is not None:
            self._used[key] = found
        return found

    def put(self, key: str, results: pd.DataFrame, curve: pd.DataFrame | None) -> None:
        self._used[key] = (results.reset_index(drop=True), None if curve is None else curve.reset_index(drop=True))

    def save(self) -> None:
        """Write the groups this build used (each file atomically: a reader never sees half a file)."""
        if not self._used:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        results = pd.concat([frame.assign(**{KEY: key, HAS_CURVE: curve is not None})
                             for key, (frame, curve) in self._used.items()], ignore_index=True)
        curves = [curve.assign(**{KEY: key}) for key, (_, curve) in self._used.items() if curve is not None]
        for name, frame in (("curves", pd.concat(curves, ignore_index=True) if curves
                             else pd.DataFrame({KEY: pd.Series(dtype=str)})), ("results", results)):
            temporary = self.folder / f".{name}.parquet.{os.getpid()}"
            frame.to_parquet(temporary, index=False)
            os.replace(temporary, self.folder / f"{name}.parquet")
