"""True site effects, outcome probabilities and realised events.

Each measure with a scenario model gets p = expit(intercept + terms + site
effect). A measure ``given`` another is a subset of the parent's events:
p = p_parent x q with q the measure's own logistic model, so the parent stays
exactly logistic (its coefficients are recoverable) while the child's events
always satisfy the parent's event expression. Events are then written into
the dictionary's columns so that each measure's SQL expression, evaluated on
a clean row, gives back exactly the generated event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import Registry
from .frame import Frame, expit
from .scenario import Scenario


@dataclass(frozen=True)
class SiteEffects:
    """effect[site, period, measure] on the logit scale, and each site's designation per measure."""

    measures: list[str]
    effect: np.ndarray
    designation: dict[tuple[int, str], str]   # (site index, measure) -> designation

    def of(self, site_index: int, measure: str) -> str:
        return self.designation.get((site_index, measure), "none")


def site_effects(scenario: Scenario, n_sites: int, n_periods: int, site_volume: np.ndarray,
                 rng: np.random.Generator) -> SiteEffects:
    """Random N(0, sd^2) effects per site and measure, then the designated sites' effects.

    Designated sites are the largest ones (by generated cases), in the order
    the scenario lists the designations, so that the outliers are detectable.
    """
    measures = list(scenario.outcome_order())
    spec = scenario.site_effects
    sd = float(spec.get("sd", 0.25))
    base = rng.normal(0.0, sd, (n_sites, len(measures)))
    effect = np.repeat(base[:, None, :], n_periods, axis=1)
    designation: dict[tuple[int, str], str] = {}
    by_size = list(np.argsort(-site_volume, kind="stable"))
    for entry, site in zip(spec.get("designations") or [], by_size):
        if n_sites < 2 * len(spec.get("designations") or []):
            break  # too few sites: designating most of them would leave no peers to compare with
        if "effect" in entry:
            path = np.full(n_periods, float(entry["effect"]))
        else:
            path = np.linspace(float(entry["from"]), float(entry["to"]), n_periods)
        for measure in entry.get("measures") or measures:
            if measure in measures:
                effect[site, :, measures.index(measure)] = path
                designation[(int(site), measure)] = str(entry["designation"])
    return SiteEffects(measures, effect, designation)


def draw_outcomes(frame: Frame, scenario: Scenario, effects: SiteEffects, site: np.ndarray,
                  period: np.ndarray, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Per measure: true probability ``p``, realised event ``y``, site effect ``effect``, own model ``q``."""
    results: dict[str, dict[str, np.ndarray]] = {}
    for measure in scenario.outcome_order():
        spec = scenario.outcomes[measure]
        shift = effects.effect[site, period, effects.measures.index(measure)]
        q = expit(frame.linear(float(spec.get("intercept", 0.0)), spec.get("terms")) + shift)
        draw = rng.random(frame.n) < q
        parent = spec.get("given")
        if parent:
            p, y = results[parent]["p"] * q, results[parent]["y"] & draw
        else:
            p, y = q, draw
        results[measure] = {"p": p, "y": y, "effect": shift, "q": q}
    return results


def realise_flags(frame: Frame, scenario: Scenario, outcomes: dict, died_in_hospital: np.ndarray | None,
                  rng: np.random.Generator) -> None:
    """Set the flag columns so every measure's event expression reproduces its event.

    ``any_flag`` measures: each event sets one flag drawn by weight; a parent
    event without a child event draws from the parent's flags that are not a
    child's; ``extra_flag_share`` of parent events get a second such flag.
    ``flag_unless`` maps a flag to a boolean variable that rules it out on a
    row (new renal failure is impossible for a patient already on dialysis),
    so clean rows never trip the registry's cross-field plausibility rules.
    ``flag`` measures copy the event into one column.
    """
    realise = {m: scenario.outcomes[m].get("realise") or {} for m in scenario.outcome_order()}
    for measure, how in realise.items():
        if how.get("kind") == "any_flag":
            for flag in how["flags"]:
                frame[flag] = np.zeros(frame.n, dtype=bool)
        elif how.get("kind") == "flag":
            frame[how["flag"]] = np.zeros(frame.n, dtype=bool)

    def set_one(flags: dict, rows: np.ndarray, unless: dict, required: bool = True) -> None:
        """One flag per row by weight, never a flag whose ``unless`` variable is true on that row."""
        if not len(rows) or not flags:
            return
        names = list(flags)
        weights = np.tile(np.array([float(flags[n]) for n in names]), (len(rows), 1))
        for position, name in enumerate(names):
            if name in unless:
                weights[frame[unless[name]][rows].astype(bool), position] = 0.0
        total = weights.sum(axis=1)
        if required and (total == 0).any():
            raise ValueError(f"flag_unless rules out every flag of {list(flags)} for some events")
        rows, weights, total = rows[total > 0], weights[total > 0], total[total > 0]
        cdf = np.cumsum(weights, axis=1) / total[:, None]
        chosen = np.minimum((rng.random(len(rows))[:, None] >= cdf).sum(axis=1), len(names) - 1)
        for position, name in enumerate(names):
            frame[name][rows[chosen == position]] = True

    for measure, how in realise.items():
        y = outcomes[measure]["y"]
        if how.get("kind") == "flag":
            if how.get("zero_when_died_in_hospital") and died_in_hospital is not None:
                y = y & ~died_in_hospital
                outcomes[measure]["y"] = y
            frame[how["flag"]][:] = y
            continue
        if how.get("kind") != "any_flag":
            continue
        children = [m for m in realise if scenario.outcomes[m].get("given") == measure
                    and realise[m].get("kind") == "any_flag"]
        child_flags = {f for c in children for f in realise[c]["flags"]}
        own = {f: w for f, w in how["flags"].items() if f not in child_flags}
        covered = np.zeros(frame.n, dtype=bool)
        for child in children:
            covered |= outcomes[child]["y"]
        pool = own if children else how["flags"]
        unless = how.get("flag_unless") or {}
        set_one(pool, np.flatnonzero(y & ~covered), unless)
        set_one(pool, np.flatnonzero(y & (rng.random(frame.n) < float(how.get("extra_flag_share", 0.0)))), unless,
                required=False)


def death_measure(scenario: Scenario) -> str | None:
    return next((m for m in scenario.outcome_order()
                 if (scenario.outcomes[m].get("realise") or {}).get("kind") == "death_date"), None)


def follow_up_days(registry: Registry, measure: str | None) -> int:
    return registry.measure(measure).follow_up_days if measure else 30
