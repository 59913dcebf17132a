"""The generated cases as columns of numpy arrays, and the term language.

Everything is vectorised over all cases at once (a million cases must take
seconds, not minutes), so the generator works on one column-oriented frame:
code variables are small integer indices into their level list (cheap to
compare and to hand to Arrow), booleans are bool arrays, numbers are floats
with NaN for "left blank", dates are ``datetime64[D]``.

A *term* names what a coefficient multiplies: ``age_years`` (the value),
``emergency`` (0/1) or ``asa_class[3]`` (an indicator of one level). The same
language is used by the scenario YAML, the truth's coefficients.csv and the
tests, so there is one parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

TERM = re.compile(r"^([a-z][a-z0-9_]*)(?:\[(.+)\])?$")


def parse_term(term: str) -> tuple[str, str | None]:
    match = TERM.match(term)
    if not match:
        raise ValueError(f"term {term!r} must look like name or name[level]")
    return match.group(1), match.group(2)


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


@dataclass
class Frame:
    """Column store of the cases being generated."""

    n: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    levels: dict[str, list[str]] = field(default_factory=dict)   # code variables
    group: np.ndarray | None = None          # peer-group index per case
    group_names: list[str] = field(default_factory=list)
    blank: dict[str, np.ndarray] = field(default_factory=dict)   # True: the file leaves the value blank

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self.columns[name] = values

    def set_code(self, name: str, levels: list[str], index: np.ndarray) -> None:
        self.levels[name] = list(levels)
        self.columns[name] = index.astype(np.int16)

    def level_index(self, name: str, level: str) -> int:
        try:
            return self.levels[name].index(str(level))
        except (KeyError, ValueError):
            raise KeyError(f"{level!r} is not a level of {name!r}") from None

    def is_level(self, name: str, level: str) -> np.ndarray:
        return self.columns[name] == self.level_index(name, level)

    def term(self, term: str, centre: dict | None = None) -> np.ndarray:
        """The values a coefficient on ``term`` multiplies, as float64."""
        name, level = parse_term(term)
        if name not in self.columns:
            raise KeyError(f"term {term!r}: {name!r} has not been generated yet")
        if level is not None:
            return self.is_level(name, level).astype(np.float64)
        if name in self.levels:
            raise KeyError(f"term {term!r}: {name!r} is a code variable; name a level like {name}[...]")
        values = self.columns[name].astype(np.float64)
        if centre and name in centre:
            values = values - float(centre[name])
        return values

    def linear(self, intercept, terms: dict | None, centre: dict | None = None) -> np.ndarray:
        """intercept + sum(coefficient x term); ``intercept`` may be per case."""
        eta = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (self.n,)).copy()
        for term, coefficient in (terms or {}).items():
            eta += float(coefficient) * self.term(term, centre)
        return eta

    def by_group(self, value) -> np.ndarray:
        """A parameter per case: a scalar, or a mapping keyed by peer group (with ``default``)."""
        if not isinstance(value, dict):
            return np.full(self.n, float(value))
        table = np.array([float(value.get(g, value.get("default", np.nan))) for g in self.group_names])
        if np.isnan(table).any():
            missing = [g for g, v in zip(self.group_names, table) if np.isnan(v)]
            raise ValueError(f"parameter {value} has no value (or default) for peer groups {missing}")
        return table[self.group]
