"""Where things live at run time.

Every file the pipeline writes goes under one data folder (``CQI_DATA_DIR``,
default ``<project>/data``), so a deployment backs up one folder and git
ignores it. The DuckDB path is read by both the Dagster resource and the dbt
profile from ``CQI_WAREHOUSE`` so the two never open different files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
REGISTRIES_DIR = PROJECT_ROOT / "registries"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DEFAULT_REGISTRY = "general_surgery"
DEMO_SECRET = "cqi-demo-secret-do-not-use-in-production"


@dataclass(frozen=True)
class Paths:
    """The folders of one deployment, all under ``data_dir``."""

    data_dir: Path

    @property
    def landing(self) -> Path:
        return self.data_dir / "landing"

    @property
    def archive(self) -> Path:
        return self.data_dir / "archive"

    @property
    def quarantine(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def receptions(self) -> Path:
        return self.data_dir / "receptions"

    @property
    def receipts(self) -> Path:
        return self.data_dir / "receipts"

    @property
    def warehouse(self) -> Path:
        return Path(os.environ.get("CQI_WAREHOUSE") or self.data_dir / "warehouse.duckdb")

    @property
    def publish(self) -> Path:
        return self.data_dir / "publish"

    @property
    def worklists(self) -> Path:
        return self.data_dir / "worklists"

    @property
    def analyst(self) -> Path:
        return self.data_dir / "analyst"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    def ensure(self) -> "Paths":
        for folder in (self.landing, self.archive, self.quarantine, self.receipts, self.receptions,
                       self.publish, self.worklists, self.analyst, self.dagster_home):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def data_dir() -> Path:
    return Path(os.environ.get("CQI_DATA_DIR") or PROJECT_ROOT / "data").resolve()


def paths() -> Paths:
    return Paths(data_dir())


DEFAULT_DUCKDB_MEMORY_LIMIT = "6GB"


def duckdb_memory_limit() -> str:
    """DuckDB's memory limit for every warehouse connection, dbt's included (``CQI_DUCKDB_MEMORY_LIMIT``).

    DuckDB's own default is 80% of the machine; scoring a national
    registry in long form would take that and more. With a limit it spills to
    disk instead, so a run stays within its memory budget (8 GiB at L).
    """
    return os.environ.get("CQI_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT)


DEFAULT_DUCKDB_FITTING_MEMORY_LIMIT = "3GB"


def duckdb_fitting_memory_limit() -> str:
    """DuckDB's memory limit while the risk models are fitted (``CQI_DUCKDB_FITTING_MEMORY_LIMIT``).

    The fit holds each measure's cases and design matrix in Python (cases x terms in float64: about
    2.4 GB at 10 million cases) beside DuckDB's buffers; with the general limit the risk-model step
    of a national registry peaked at 8.3 GiB, with this one at 6.2 GiB and no slower.
    """
    return os.environ.get("CQI_DUCKDB_FITTING_MEMORY_LIMIT", DEFAULT_DUCKDB_FITTING_MEMORY_LIMIT)


DEFAULT_PARALLEL_FIT_MAX_CASES = 2_000_000


def parallel_fit_max_cases() -> int:
    """Measures are fitted two at a time (one per core) while each has at most this many counted cases
    (``CQI_PARALLEL_FIT_MAX_CASES``; 0 fits one at a time).

    A fit is single-threaded numpy, so a second core would otherwise idle; but each fit holds its
    cases and design matrix (cases x terms in float64: about 0.7 GB at 2 million cases and 45
    terms). A state collaborative's measures fit two at a time; a national registry's (10 million
    cases each) one at a time, within the 8 GiB the pipeline keeps to.
    """
    return int(os.environ.get("CQI_PARALLEL_FIT_MAX_CASES", DEFAULT_PARALLEL_FIT_MAX_CASES))


def registry_id() -> str:
    return os.environ.get("CQI_REGISTRY", DEFAULT_REGISTRY)


def registry_dir() -> Path:
    """The registry folder: ``CQI_REGISTRY_DIR`` or ``registries/<CQI_REGISTRY>``."""
    explicit = os.environ.get("CQI_REGISTRY_DIR")
    return Path(explicit).resolve() if explicit else REGISTRIES_DIR / registry_id()


def pseudonym_secret() -> tuple[bytes, bool]:
    """The HMAC key for pseudonymisation, and whether it is the demo default."""
    secret = os.environ.get("CQI_PSEUDONYM_SECRET")
    if secret:
        return secret.encode(), False
    return DEMO_SECRET.encode(), True
