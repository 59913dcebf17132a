"""Direct identifiers and keys: case numbers, record numbers, names, dates of birth.

Sites send real identifiers and the pipeline pseudonymises them at intake, so
the synthetic files must carry them too, including accented names that break
naive encodings. Every name here is Latin-1 encodable, so any file may be
re-encoded as Latin-1 without loss. Built with Arrow string kernels: a
million identifiers take well under a second.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley",
    "Paul", "Emily", "Andrew", "Donna", "Kevin", "Michelle", "Brian", "Carol", "George", "Amanda",
    "Aisha", "Mohammed", "Wei", "Priya", "Olga", "Kwame", "Fatima", "Hiroshi", "Ngozi", "Sean",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "O'Brien", "Okafor", "Kowalski", "Chen", "Patel", "MacLeod", "Novak", "Larsen", "Haddad", "Schmidt",
]
ACCENTED_FIRST = ["José", "Zoë", "Renée", "André", "Søren", "Björn", "Inés", "François", "Chloé", "Noémie"]
ACCENTED_LAST = ["Müller", "Ångström", "Peña", "Gómez", "Lefèvre", "Núñez", "Sørensen", "Dvořák",
                 "Ødegård", "Böhm"]
# Dvořák (ř) is not Latin-1: drop anything that is, so every name survives a Latin-1 export.
ACCENTED_LAST = [n for n in ACCENTED_LAST if n.encode("latin-1", "ignore").decode("latin-1") == n]
ACCENTED_SHARE = 0.06


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _choose(pool: list[str], index: np.ndarray) -> pa.Array:
    return pa.array(pool, pa.string()).take(pa.array(index))


def patient_names(n: int, rng: np.random.Generator, accented_share: float = ACCENTED_SHARE) -> pa.Array:
    """'First Last' names; about ``accented_share`` use accented first and last names."""
    accented = rng.random(n) < accented_share
    first_pool, last_pool = FIRST_NAMES + ACCENTED_FIRST, LAST_NAMES + ACCENTED_LAST
    first = np.where(accented, len(FIRST_NAMES) + rng.integers(0, len(ACCENTED_FIRST), n),
                     rng.integers(0, len(FIRST_NAMES), n))
    last = np.where(accented, len(LAST_NAMES) + rng.integers(0, len(ACCENTED_LAST), n),
                    rng.integers(0, len(LAST_NAMES), n))
    return pc.binary_join_element_wise(_choose(first_pool, first), _choose(last_pool, last), " ")


def accented_names(n: int, rng: np.random.Generator) -> pa.Array:
    return patient_names(n, rng, accented_share=1.0)


def case_ids(site_ids: pa.Array, sequence: np.ndarray, width: int = 6) -> pa.Array:
    """``S01-000123``: the site's code and a running number, unique within the site."""
    numbers = pc.utf8_lpad(_text(sequence), width, "0")
    return pc.binary_join_element_wise(site_ids, numbers, "-")


def record_numbers(site_codes: list[str], site_index: np.ndarray, sequence: np.ndarray) -> pa.Array:
    """Site-prefixed digits: the site's number, then 7 scrambled digits unique within the site."""
    prefixes = []
    for position, code in enumerate(site_codes):
        digits = "".join(re.findall(r"\d", code)) or f"{position + 1:03d}"
        prefixes.append(digits)
    scrambled = (sequence.astype(np.int64) * 7919 + 104_729) % 10_000_000   # 7919 is prime: a bijection
    return pc.binary_join_element_wise(_choose(prefixes, site_index),
                                       pc.utf8_lpad(_text(scrambled), 7, "0"), "")


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    years = days.astype("datetime64[Y]")
    months = days.astype("datetime64[M]")
    return (years.astype(np.int64) + 1970, (months - years.astype("datetime64[M]")).astype(np.int64) + 1,
            (days - months.astype("datetime64[D]")).astype(np.int64) + 1)


def age_at(birth: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Whole years of age on a day: the same rule the intake uses."""
    by, bm, bd = _ymd(birth)
    oy, om, od = _ymd(on)
    return oy - by - ((om < bm) | ((om == bm) & (od < bd)))


def birth_dates(age: np.ndarray, operation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A date of birth that makes the age at ``operation`` exactly ``age`` whole years."""
    year, month, day = _ymd(operation)
    day = np.where((month == 2) & (day == 29), 28, day)        # anniversaries in non-leap years
    anniversary = ((year - age.astype(np.int64) - 1970).astype("datetime64[Y]").astype("datetime64[M]")
                   + (month - 1)).astype("datetime64[D]") + (day - 1)
    birth = anniversary - rng.integers(0, 365, len(age)).astype("timedelta64[D]")
    assert (age_at(birth, operation) == age).all(), "date of birth does not reproduce the age"
    return birth
