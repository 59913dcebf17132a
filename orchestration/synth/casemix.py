"""Case mix: the risk factors and other covariates of every case.

Distributions come from the scenario's ``covariates`` section, in its order,
so a variable may depend on earlier ones (emergency on procedure group,
albumin on ASA class). Teaching and community hospitals get different
parameters through peer-group keyed values, which gives the risk models a
real case-mix difference to adjust for.

Variables of the dictionary the scenario does not mention get a generic
fallback, so any registry can be generated (with uninformative values).
"""

from __future__ import annotations

import numpy as np

from ..registry import Registry
from .frame import Frame, expit


def _dictionary_levels(registry: Registry, name: str) -> list[str] | None:
    for variable in registry.variables:
        if variable.name == name and variable.codes:
            return list(variable.codes)
    return None


def _is_nested(probs: dict) -> bool:
    return bool(probs) and all(isinstance(v, dict) for v in probs.values())


def _keys_per_case(frame: Frame, spec: dict, table: dict) -> tuple[np.ndarray, list[str]]:
    """Which row of a keyed table applies to each case: by ``given`` variable or by peer group."""
    given = spec.get("given")
    if given:
        keys = frame.levels[given]
        return frame[given].astype(np.int64), keys
    keys = list(frame.group_names)
    index = frame.group
    # A table keyed only by ``default`` (or missing a group) falls back to ``default``.
    return index, [k if k in table else "default" for k in keys]


def _categorical(frame: Frame, name: str, spec: dict, levels: list[str] | None, rng: np.random.Generator) -> None:
    probs = spec["probs"]
    if not _is_nested(probs):
        probs = {"default": probs}
        spec = {k: v for k, v in spec.items() if k != "given"}
    levels = levels or list(dict.fromkeys(k for table in probs.values() for k in map(str, table)))
    index = np.zeros(frame.n, dtype=np.int64)
    case_keys, keys = _keys_per_case(frame, spec, probs)
    for key_index, key in enumerate(keys):
        mask = case_keys == key_index
        if not mask.any():
            continue
        table = {str(k): float(v) for k, v in probs[key].items()}
        p = np.array([table.get(level, 0.0) for level in levels])
        index[mask] = rng.choice(len(levels), size=int(mask.sum()), p=p / p.sum())
    frame.set_code(name, levels, index)


def _boolean(frame: Frame, name: str, spec: dict, rng: np.random.Generator) -> None:
    p_spec = spec.get("p", 0.1)
    if spec.get("given"):
        case_keys, keys = _keys_per_case(frame, spec, p_spec)
        p = np.array([float(p_spec.get(k, 0.0)) for k in keys])[case_keys]
    else:
        p = frame.by_group(p_spec)
    if spec.get("terms"):
        p = expit(np.log(p / (1 - p)) + frame.linear(0.0, spec["terms"], spec.get("centre")))
    frame[name] = rng.random(frame.n) < p


def _continuous(frame: Frame, name: str, spec: dict, rng: np.random.Generator) -> None:
    centre = frame.linear(frame.by_group(spec.get("intercept", 0.0)), spec.get("terms"), spec.get("centre"))
    values = centre + frame.by_group(spec.get("sd", 1.0)) * rng.standard_normal(frame.n)
    if spec["kind"] == "lognormal":
        values = np.exp(values)
    if "clip" in spec:
        values = np.clip(values, *spec["clip"])
    if spec.get("integer"):
        values = np.floor(values)
    elif "round" in spec:
        values = np.round(values, int(spec["round"]))
    frame[name] = values
    if spec.get("missing"):
        frame.blank[name] = rng.random(frame.n) < float(spec["missing"])


def generate_covariates(frame: Frame, registry: Registry, covariates: dict, age_field: str | None,
                        rng: np.random.Generator) -> None:
    """Fill ``frame`` with every covariate the scenario describes, in order."""
    for name, spec in covariates.items():
        kind = spec.get("kind")
        if kind == "categorical":
            _categorical(frame, name, spec, _dictionary_levels(registry, name), rng)
        elif kind == "boolean":
            _boolean(frame, name, spec, rng)
        elif kind in ("normal", "lognormal"):
            spec = {**spec, "integer": spec.get("integer", name == age_field)}
            _continuous(frame, name, spec, rng)
        else:
            raise ValueError(f"covariates.{name}: kind {kind!r} must be categorical, boolean, normal or lognormal")


def lab_missingness(frame: Frame, spec: dict, rng: np.random.Generator) -> None:
    """Mark lab values the file leaves blank: P(blank) = expit(intercept + terms).

    ``indicators`` names conditions (a variable in a list of levels) usable as
    terms, e.g. ``low_risk: {asa_class: ["1", "2"]}``.
    """
    indicators = {}
    for label, condition in (spec.get("indicators") or {}).items():
        mask = np.ones(frame.n, dtype=bool)
        for variable, levels in condition.items():
            allowed = [frame.level_index(variable, str(level)) for level in levels]
            mask &= np.isin(frame[variable], allowed)
        indicators[label] = mask.astype(np.float64)
    for lab, model in (spec.get("labs") or {}).items():
        eta = np.full(frame.n, float(model.get("intercept", 0.0)))
        for term, coefficient in (model.get("terms") or {}).items():
            eta += float(coefficient) * (indicators[term] if term in indicators else frame.term(term))
        frame.blank[lab] = rng.random(frame.n) < expit(eta)


def generic_fallbacks(frame: Frame, registry: Registry, skip: set[str], index_date: np.ndarray,
                      rng: np.random.Generator) -> list[str]:
    """Uninformative values for dictionary variables nothing else generated; returns their names.

    A required date gets the index (operation) date, so temporal-order rules
    hold; optional dates and strings stay blank (strings are filled as text
    by the caller when required)."""
    filled = []
    for variable in registry.variables:
        if variable.name in frame or variable.name in skip:
            continue
        if variable.type == "code":
            levels = list(variable.codes)
            frame.set_code(variable.name, levels, rng.integers(0, len(levels), frame.n))
        elif variable.type == "boolean":
            frame[variable.name] = rng.random(frame.n) < 0.1
        elif variable.type in ("integer", "number"):
            low = variable.min if variable.min is not None else 0.0
            high = variable.max if variable.max is not None else 100.0
            values = rng.uniform(low, high, frame.n)
            frame[variable.name] = np.floor(values) if variable.type == "integer" else np.round(values, 1)
        elif variable.type == "date" and variable.required:
            frame[variable.name] = index_date.copy()
        else:
            continue
        filled.append(variable.name)
    return filled

