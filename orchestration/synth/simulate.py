"""Simulating the cases: case mix, dates, true outcomes, identifiers.

Everything here is the *clean* collaborative; defects and file formats come
later. Each stage draws from its own random stream (seed, stage), so turning
defects off, or changing how files are written, leaves the cases unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..registry import Registry
from . import identity
from .casemix import generate_covariates, generic_fallbacks, lab_missingness
from .episode import admission_dates, discharge_and_death, length_of_stay, operation_dates
from .frame import Frame
from .outcomes import SiteEffects, death_measure, draw_outcomes, follow_up_days, realise_flags, site_effects
from .roster import Period
from .scenario import Scenario

STAGES = {"roster": 1, "casemix": 2, "outcomes": 3, "episode": 4, "identity": 5, "files": 6, "defects": 7, "dates": 8}


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    return np.random.default_rng([seed, STAGES[stage]])


@dataclass
class Simulation:
    """The clean cases, ordered by site, period and operation date."""

    frame: Frame
    site: np.ndarray          # roster index per case
    period: np.ndarray        # period index per case
    outcomes: dict            # measure -> {p, y, effect, q}
    effects: SiteEffects
    text: dict[str, pa.Array]  # identifier columns built as text (case id, site id, record number, name)
    age_field: str


def _base_frame(roster, spans: list[Period], counts: np.ndarray, rng: np.random.Generator):
    """An empty frame with each case's site, period and operation date, sorted."""
    n_sites, n_periods = counts.shape
    flat = counts.ravel()
    site = np.repeat(np.repeat(np.arange(n_sites), n_periods), flat)
    period = np.repeat(np.tile(np.arange(n_periods), n_sites), flat)
    starts = np.array([p.start for p in spans], dtype="datetime64[D]")[period]
    ends = np.array([p.end for p in spans], dtype="datetime64[D]")[period]
    operation = operation_dates(starts, ends, rng)
    order = np.lexsort((operation, period, site))
    groups = sorted({s.peer_group or "default" for s in roster})
    site_group = np.array([groups.index(s.peer_group or "default") for s in roster])
    return Frame(len(site), group=site_group[site], group_names=groups), site, period, operation[order]


def simulate(registry: Registry, scenario: Scenario, roster, spans: list[Period], counts: np.ndarray,
             seed: int) -> Simulation:
    f = scenario.field
    frame, site, period, operation = _base_frame(roster, spans, counts, stage_rng(seed, "dates"))
    n = frame.n
    casemix_rng, identity_rng = stage_rng(seed, "casemix"), stage_rng(seed, "identity")
    if f("operation_date"):
        frame[f("operation_date")] = operation
    generate_covariates(frame, registry, scenario.covariates, f("age"), casemix_rng)
    age_field = f("age") or "age_years"
    if age_field not in frame:
        frame[age_field] = np.floor(np.clip(casemix_rng.normal(58, 16, n), 18, 95))
    if f("birth_date"):
        frame[f("birth_date")] = identity.birth_dates(frame[age_field].astype(np.int64), operation, identity_rng)
    lab_missingness(frame, scenario.lab_missingness, casemix_rng)

    outcome_rng = stage_rng(seed, "outcomes")
    effects = site_effects(scenario, len(roster), len(spans), counts.sum(axis=1).astype(float), outcome_rng)
    outcomes = draw_outcomes(frame, scenario, effects, site, period, outcome_rng)

    episode_rng = stage_rng(seed, "episode")
    if f("admission_date"):
        frame[f("admission_date")] = admission_dates(frame, operation, scenario.episode, f("emergency"), episode_rng)
    mortality = death_measure(scenario)
    los = length_of_stay(frame, scenario.episode, outcomes, episode_rng)
    discharge, death, in_hospital = discharge_and_death(
        operation, los, outcomes[mortality]["y"] if mortality else None, follow_up_days(registry, mortality),
        scenario.episode, episode_rng)
    if f("discharge_date"):
        frame[f("discharge_date")] = discharge
    if f("death_date"):
        frame[f("death_date")] = death
    realise_flags(frame, scenario, outcomes, in_hospital if mortality else None, outcome_rng)
    text_fields = {f(k) for k in ("case_id", "site_id", "record_number", "name") if f(k)}
    generic_fallbacks(frame, registry, text_fields, operation, casemix_rng)

    site_ids = [s.site_id for s in roster]
    site_text = pa.array(site_ids, pa.string()).take(pa.array(site))
    sequence = np.arange(n) - np.searchsorted(site, np.arange(len(roster)))[site] + 1
    text = {f("site_id"): site_text, f("case_id"): identity.case_ids(site_text, sequence)}
    if f("record_number"):
        text[f("record_number")] = identity.record_numbers(site_ids, site, sequence)
    if f("name"):
        text[f("name")] = identity.patient_names(n, identity_rng)
    for variable in registry.variables:   # other required text: site-prefixed digits
        if variable.type == "string" and variable.required and variable.name not in text | frame.columns:
            text[variable.name] = identity.record_numbers(site_ids, site, sequence)
    return Simulation(frame, site, period, outcomes, effects, text, age_field)
