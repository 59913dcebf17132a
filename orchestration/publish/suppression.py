"""Small-cell suppression for anything that leaves the coordinating centre.

Counts from 1 to the threshold (10 by default) are replaced by a marker; zero
is shown (it identifies nobody). Rates derived from a suppressed count are
suppressed with it.
"""

from __future__ import annotations

import pandas as pd

SUPPRESSED = "<=10"


def suppress_counts(frame: pd.DataFrame, count_columns: list[str], derived: dict[str, list[str]],
                    threshold: int) -> pd.DataFrame:
    """Suppress ``count_columns`` in 1..threshold and the ``derived`` columns of each."""
    out = frame.copy()
    for column in count_columns:
        small = out[column].notna() & (out[column] >= 1) & (out[column] <= threshold)
        out[column] = out[column].astype("object")
        out.loc[small, column] = f"<={threshold}"
        for dependent in derived.get(column, []):
            out[dependent] = out[dependent].astype("object")
            out.loc[small, dependent] = "suppressed"
    return out
