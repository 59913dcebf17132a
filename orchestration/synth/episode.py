"""The dates of each episode: admission, operation, discharge, death.

The operation date decides the period, so it is drawn uniformly inside the
case's period; admission and discharge may cross a period boundary, as real
stays do. Deaths are placed within the mortality measure's follow-up, a share
of them in hospital (death date = discharge date, which also excludes the
case from readmission), the rest after discharge.
"""

from __future__ import annotations

import numpy as np

from .frame import Frame


def operation_dates(starts: np.ndarray, ends: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniform day between each case's period start and end (inclusive)."""
    span = (ends - starts).astype(np.int64) + 1
    return starts + np.floor(rng.random(len(starts)) * span).astype("timedelta64[D]")


def _days_from_probs(probs: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


def admission_dates(frame: Frame, operation: np.ndarray, spec: dict, emergency_field: str | None,
                    rng: np.random.Generator) -> np.ndarray:
    before = spec.get("admission_days_before") or {}
    elective = before.get("elective", [1.0])
    days = _days_from_probs(elective, frame.n, rng)
    if emergency_field and emergency_field in frame and "emergency" in before:
        urgent = frame[emergency_field].astype(bool)
        days[urgent] = _days_from_probs(before["emergency"], int(urgent.sum()), rng)
    return operation - days.astype("timedelta64[D]")


def length_of_stay(frame: Frame, spec: dict, outcomes: dict, rng: np.random.Generator) -> np.ndarray:
    los_spec = spec.get("length_of_stay") or {}
    mean = np.full(frame.n, float(los_spec.get("default", 3.0)))
    given = los_spec.get("given")
    if given and given in frame.levels:
        table = np.array([float(los_spec["mean"].get(level, los_spec.get("default", 3.0)))
                          for level in frame.levels[given]])
        mean = table[frame[given]]
    longer = los_spec.get("longer_when")
    if longer in outcomes:
        mean = np.where(outcomes[longer]["y"], mean * float(los_spec.get("factor", 2.0)), mean)
    return rng.poisson(mean)


def discharge_and_death(operation: np.ndarray, los: np.ndarray, died: np.ndarray | None, follow_up: int,
                        spec: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discharge dates, death dates (NaT if alive at follow-up) and whether death was in hospital."""
    n = len(operation)
    death_spec = spec.get("death") or {}
    if died is None:
        died = np.zeros(n, dtype=bool)
    to_death = np.minimum(rng.geometric(float(death_spec.get("days_geometric_p", 0.09)), n) - 1, follow_up)
    in_hospital = died & ((rng.random(n) < float(death_spec.get("in_hospital_share", 0.6))) | (to_death == 0))
    stay = np.where(in_hospital, to_death, np.where(died, np.minimum(los, to_death - 1), los))
    discharge = operation + stay.astype("timedelta64[D]")
    death = np.where(died, operation + to_death.astype("timedelta64[D]"), np.datetime64("NaT", "D"))
    return discharge, death.astype("datetime64[D]"), in_hospital
