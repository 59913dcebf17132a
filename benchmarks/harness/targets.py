"""The performance targets of issue 9, checked against a scenario's results.

Kept apart from the measuring code so the README and the JSON state the same
targets, and a target changes in one place.
"""

from __future__ import annotations

GIB = 1024


def targets_for(result: dict) -> list[dict]:
    """Each target that applies to this scenario: what, the limit, the figure, met or not."""
    name, full, inc = result["scenario"], result["full"], result["incremental"]
    rows = []
    if name == "M":
        rows += [
            {"target": "M full cycle <= 120 s", "figure": full["cycle_s"], "met": full["cycle_s"] <= 120},
            {"target": "M full cycle <= 4x floor", "figure": full["ratio_to_floor"]["cycle"],
             "met": full["ratio_to_floor"]["cycle"] <= 4},
            {"target": "M incremental cycle <= 15 s", "figure": inc["cycle_s"], "met": inc["cycle_s"] <= 15},
        ]
    if name in ("M", "L"):
        redo = [s for s, w in inc["work"].items() if isinstance(w, dict) and w.get("reprocesses_unchanged_sites")]
        rows.append({"target": f"{name} incremental: no stage re-processes unchanged sites",
                     "figure": ", ".join(redo) or "none", "met": not redo})
    if name == "L":
        rows += [
            {"target": "L full cycle <= 20 min", "figure": full["cycle_s"], "met": full["cycle_s"] <= 1200},
            {"target": "L peak memory <= 8 GiB", "figure": full["peak_rss_mib"],
             "met": max(full["peak_rss_mib"], inc["peak_rss_mib"]) <= 8 * GIB},
        ]
    return rows
