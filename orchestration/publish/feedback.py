"""Per-site feedback: each site's own results beside blinded peers.

A site sees its own code and name, every peer only as a blinded code, and no
count from 1 to the small-cell threshold.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ..registry import Registry
from .suppression import suppress_counts

COLUMNS = ["period", "measure_id", "site", "is_you", "quality_status", "cases", "observed", "observed_rate"]


def write_site_feedback(con: duckdb.DuckDBPyConnection, registry: Registry, folder: Path) -> list[Path]:
    results = con.execute(
        "select site_id, blinded_code, period, measure_id, quality_status, cases, observed, observed_rate "
        "from marts.mart_site_results order by period, measure_id, blinded_code").df()
    threshold = registry.policy.small_cell_threshold
    written = []
    for site in registry.sites:
        view = results.copy()
        view["is_you"] = view["site_id"] == site.site_id
        view["site"] = view["blinded_code"].where(~view["is_you"], f"{site.site_id} (you)")
        view = suppress_counts(view[COLUMNS], ["cases", "observed"], {"observed": ["observed_rate"],
                                                                       "cases": ["observed_rate"]}, threshold)
        for period, rows in view.groupby("period", sort=True):
            target = folder / str(period) / site.site_id
            target.mkdir(parents=True, exist_ok=True)
            path = target / "feedback.csv"
            rows.to_csv(path, index=False)
            written.append(path)
    return written
