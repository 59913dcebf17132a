"""Which sites submit for which periods, and how many cases each file holds.

Real collaboratives mix a few large teaching hospitals with many small
community ones: volumes are lognormal across sites, so the statistics later
face both tiny and huge denominators. Case counts are allocated
deterministically (largest remainder) so ``cases`` is met exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from ..registry import Registry
from ..registry.calendar import period_bounds, period_of
from ..registry.model import Site

ROSTER_COLUMNS = ["site_id", "display_name", "region", "peer_group", "active_from", "active_to"]


@dataclass(frozen=True)
class Period:
    period: str
    start: date
    end: date


def choose_periods(registry: Registry, count: int | None) -> list[Period]:
    """The registry's periods, truncated or extended (same period length) to ``count``."""
    spans = [Period(p.period, p.start, p.end) for p in registry.periods]
    if count is None:
        return spans
    if count < 1:
        raise ValueError("periods must be at least 1")
    while len(spans) < count:
        name = period_of(spans[-1].end + timedelta(days=1), registry.calendar.period_length)
        start, end = period_bounds(name)
        spans.append(Period(name, start, end))
    return spans[:count]


def choose_sites(registry: Registry, count: int | None, scenario_roster: dict, first_period: str,
                 rng: np.random.Generator) -> list[Site]:
    """The registry roster, its first ``count`` sites, or a generated roster S001..Snnn."""
    sites = list(registry.sites)
    if count is None or count == len(sites):
        return sites
    if count < 1:
        raise ValueError("sites must be at least 1")
    if count < len(sites):
        return sites[:count]
    shares = scenario_roster.get("peer_groups") or {"teaching": 0.25, "community": 0.75}
    regions = scenario_roster.get("regions") or ["North", "Central", "South", "West"]
    names = list(shares)
    counts = allocate(np.array([float(shares[g]) for g in names]), count, minimum=0)
    groups = np.repeat(np.arange(len(names)), counts)
    rng.shuffle(groups)
    width = max(3, len(str(count)))
    return [Site(site_id=f"S{i + 1:0{width}d}", display_name=f"Hospital {i + 1:0{width}d}",
                 region=regions[int(rng.integers(len(regions)))], peer_group=names[groups[i]],
                 active_from=first_period, active_to=None)
            for i in range(count)]


def active(site: Site, period: str) -> bool:
    return (not site.active_from or site.active_from <= period) and (not site.active_to or period <= site.active_to)


def allocate(weights: np.ndarray, total: int, minimum: int = 1) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``weights`` (largest remainder).

    Cells with positive weight get at least ``minimum`` when the total allows it,
    so every active site-period has a file with at least one case.
    """
    weights = np.asarray(weights, dtype=np.float64)
    positive = weights > 0
    floor = np.where(positive, minimum, 0) if total >= minimum * positive.sum() else np.zeros(len(weights), int)
    rest = total - int(floor.sum())
    share = weights / weights.sum() * rest
    counts = np.floor(share).astype(np.int64)
    remainder = rest - int(counts.sum())
    order = np.lexsort((np.arange(len(share)), -(share - counts)))
    counts[order[:remainder]] += 1
    return counts + floor


def site_period_counts(sites: list[Site], periods: list[Period], cases: int, volume: dict,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cases per (site, period) as a sites x periods matrix, and each site's size weight."""
    multiplier = volume.get("peer_group_multiplier") or {}
    size = rng.lognormal(0.0, float(volume.get("site_sdlog", 0.9)), len(sites))
    size *= np.array([float(multiplier.get(s.peer_group, multiplier.get("default", 1.0))) for s in sites])
    wobble = rng.lognormal(0.0, float(volume.get("period_sdlog", 0.1)), (len(sites), len(periods)))
    is_active = np.array([[active(s, p.period) for p in periods] for s in sites])
    weights = size[:, None] * wobble * is_active
    if not is_active.any():
        raise ValueError("no site is active in the chosen periods")
    counts = allocate(weights.ravel(), cases).reshape(weights.shape)
    return counts, size
