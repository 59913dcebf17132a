"""Positive deviance: which sites are reliably better, period after period.

Learning from the consistently best sites is one of the things that make a
collaborative work (DOMAIN.md, "Positive deviance"), but few top performers
stay on top (in a VHA study 3 of 27), so a site is named a positive deviant
only when it is better *reliably* and *consistently*:

1. **low outlier on the shrunken estimate**: the upper limit of its
   reliability-adjusted (shrunken) O/E interval is below the benchmark 1,
   or it is flagged ``low`` outside the overdispersion-adjusted funnel
   limit (when a funnel flag column is given);
2. **reliable**: reliability >= 0.4 (the usual "acceptable" threshold;
   Dimick et al., Health Serv Res 2010);
3. **consistent**: 1 and 2 hold in at least two consecutive periods.

A period counts as consecutive only if it is the next one in the full
ordered list of periods; a period in which the site has no row breaks the
streak. The flag is evaluated per period, so a site is a positive deviant
*at* a period when its streak ending there is long enough: a site that was
better two years ago but not now is not a positive deviant now.

For an outcome where higher is better (``direction="higher_is_better"``)
"better" means the *lower* interval limit above the benchmark or a ``high``
funnel flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def positive_deviants(
    results: pd.DataFrame,
    *,
    site: str = "site",
    period: str = "period",
    upper: str = "shrunken_oe_upper_95",
    lower: str = "shrunken_oe_lower_95",
    reliability: str = "reliability",
    funnel_flag: str | None = None,
    min_reliability: float = 0.4,
    min_consecutive: int = 2,
    benchmark: float = 1.0,
    periods: Sequence | None = None,
    direction: str = "lower_is_better",
) -> pd.DataFrame:
    """Apply the positive-deviance rule to a site x period results table.

    ``results`` has one row per site and period with the shrunken O/E
    interval limit (``upper``; ``lower`` when higher is better), the
    ``reliability`` and optionally a funnel flag column (values ``high`` /
    ``low`` / ``within``) from adjusted limits. ``periods`` fixes the order
    of periods; by default the sorted distinct values (registry period labels
    such as ``2024Q1`` sort in time order).

    Returns the rows sorted by site and period with added columns:
    ``better_outlier`` (criterion 1), ``reliable`` (2), ``better`` (both),
    ``streak`` (consecutive periods, ending at this one, with ``better``)
    and ``positive_deviant`` (streak >= ``min_consecutive``). Missing
    values never count as better.
    """
    if direction not in ("lower_is_better", "higher_is_better"):
        raise ValueError("direction must be lower_is_better or higher_is_better")
    if results.duplicated([site, period]).any():
        raise ValueError("results must have at most one row per site and period")
    order = list(periods) if periods is not None else sorted(results[period].unique())
    position = {p: i for i, p in enumerate(order)}
    if not set(results[period]).issubset(position):
        raise ValueError("results has periods missing from the given period order")

    out = results.copy()
    out["_position"] = out[period].map(position).astype(int)
    out = out.sort_values([site, "_position"], kind="stable")

    if direction == "lower_is_better":
        interval_better = out[upper].astype(float) < benchmark
        funnel_side = "low"
    else:
        interval_better = out[lower].astype(float) > benchmark
        funnel_side = "high"
    outlier = interval_better.fillna(False).to_numpy(dtype=bool)
    if funnel_flag is not None:
        outlier = outlier | (out[funnel_flag].astype(object) == funnel_side).to_numpy(dtype=bool)
    reliable = (out[reliability].astype(float) >= min_reliability).fillna(False).to_numpy(dtype=bool)
    better = outlier & reliable

    streak = np.zeros(len(out), dtype=int)
    sites = out[site].to_numpy()
    positions = out["_position"].to_numpy()
    for i in range(len(out)):
        if not better[i]:
            continue
        previous_counts = i > 0 and sites[i - 1] == sites[i] and positions[i - 1] == positions[i] - 1
        streak[i] = streak[i - 1] + 1 if previous_counts else 1
    out["better_outlier"] = outlier
    out["reliable"] = reliable
    out["better"] = better
    out["streak"] = streak
    out["positive_deviant"] = streak >= min_consecutive
    return out.drop(columns="_position")
