"""The registry definition as typed, validated objects.

A coordinating centre defines its registry in YAML and CSV files; these
classes say what those files may hold and reject a malformed definition with a
message that names the file, the variable and the problem.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

VariableType = Literal["string", "integer", "number", "boolean", "date", "code"]
Role = Literal["identifier", "administrative", "risk_factor", "outcome", "date"]
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
PERIOD_PATTERN = re.compile(r"^(\d{4})(Q[1-4]|M(0[1-9]|1[0-2]))$")

# DuckDB types the warehouse stores each dictionary type as.
SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "code": "VARCHAR",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pseudonymisation(_Strict):
    """How a direct identifier is replaced at intake."""

    method: Literal["hmac", "age_at"]
    output: str
    reference: str | None = None  # the date an age is taken at
    label: str | None = None
    unit: str | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _reference_for_age(self) -> "Pseudonymisation":
        if self.method == "age_at" and not self.reference:
            raise ValueError("method age_at needs a reference date variable")
        return self


class Variable(_Strict):
    """One variable of the data dictionary."""

    name: str
    label: str
    type: VariableType
    role: Role
    definition: str
    required: bool = False
    direct_identifier: bool = False
    pseudonymise: Pseudonymisation | None = None
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    codes: dict[str, str] | None = None
    ordered: bool = False        # the code list is in clinical order (ASA class, wound class)
    aliases: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"variable name {value!r} must be lower snake_case")
        return value

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_as_text(cls, value):
        return None if value is None else {str(k): str(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _consistent(self) -> "Variable":
        if self.type == "code" and not self.codes:
            raise ValueError(f"{self.name}: type code needs a code list (codes)")
        if self.codes and self.type != "code":
            raise ValueError(f"{self.name}: only type code may have codes")
        if self.ordered and self.type != "code":
            raise ValueError(f"{self.name}: only a code list can be ordered")
        if (self.min is not None or self.max is not None) and self.type not in ("integer", "number"):
            raise ValueError(f"{self.name}: min/max apply to integer and number variables only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"{self.name}: min {self.min} is above max {self.max}")
        if self.direct_identifier and self.pseudonymise is None:
            raise ValueError(f"{self.name}: a direct identifier needs a pseudonymise method")
        if self.pseudonymise and not self.direct_identifier:
            raise ValueError(f"{self.name}: only direct identifiers are pseudonymised")
        return self

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]

    @property
    def warehouse_name(self) -> str:
        """The column that carries this variable into the warehouse."""
        return self.pseudonymise.output if self.pseudonymise else self.name


class Measure(_Strict):
    """An outcome measure: who is counted, what is an event, what predicts it."""

    id: str
    label: str
    event: str
    denominator: str = "true"
    exclusions: dict[str, str] = Field(default_factory=dict)
    follow_up_days: int = 30
    direction: Literal["lower_is_better", "higher_is_better"] = "lower_is_better"
    risk_factors: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"measure id {value!r} must be lower snake_case")
        return value


class Site(_Strict):
    site_id: str
    display_name: str
    region: str = ""
    peer_group: str = ""
    active_from: str | None = None
    active_to: str | None = None


class Calendar(_Strict):
    period_length: Literal["quarter", "month"] = "quarter"
    first_period: str
    last_period: str
    submission_deadline_days: int = 45
    data_lock_days: int = 75
    publication_cron: str = "0 6 20 1,4,7,10 *"

    @model_validator(mode="after")
    def _periods_valid(self) -> "Calendar":
        for period in (self.first_period, self.last_period):
            match = PERIOD_PATTERN.match(period)
            if not match:
                raise ValueError(f"period {period!r} must look like 2025Q1 or 2025M01")
            if (match.group(2).startswith("Q")) != (self.period_length == "quarter"):
                raise ValueError(f"period {period!r} does not match period_length {self.period_length}")
        if self.first_period > self.last_period:
            raise ValueError("first_period is after last_period")
        return self


class Policy(_Strict):
    min_cases: int = 25
    small_cell_threshold: int = 10
    interval_levels: tuple[float, ...] = (0.95, 0.998)
    completeness_threshold: float = 0.95
    rule_failure_threshold: float = 0.02   # share of a site-period's rows a blocking check tolerates
    missingness_threshold: float = 0.20
    reliability_acceptable: float = 0.4
    reliability_high: float = 0.7
    min_sites_passing: int = 3
    min_c_statistic: float = 0.65          # a risk model below this blocks publication
    calibration_slope_range: tuple[float, float] = (0.8, 1.2)
    min_model_events: int = 20             # fewer events: the measure is not risk-adjusted
    # Keep the current risk models (no refit) while less than this share of a
    # measure's counted cases changed since they were fitted (same registry
    # version and window); 0 refits whenever anything changed.
    # See docs/decisions/risk-model-refit.md.
    risk_model_refit_min_change: float = Field(default=0.0, ge=0.0, le=1.0)
    funnel_overdispersion: Literal["none", "multiplicative", "additive"] = "additive"
    funnel_trim: Literal["winsorise", "truncate"] = "winsorise"
    funnel_trim_fraction: float = 0.1
    max_file_bytes: int = 200 * 1024 * 1024
    # Intake limits: a hostile or broken file is refused before it can use
    # unbounded memory or time (see orchestration/intake/read.py).
    max_columns: int = 1000                # a file with more columns is refused
    max_line_bytes: int = 1024 * 1024      # the longest CSV row (and so the longest cell) accepted
    max_rows: int = 2_000_000              # rows per file
    max_unzipped_bytes: int = 1024 * 1024 * 1024   # an XLSX's declared uncompressed size
    max_zip_ratio: int = 100               # an XLSX member (over 1 MiB) compressed more than this is a zip bomb


class PeriodSpan(_Strict):
    """One reporting period with its dates."""

    period: str
    start: date
    end: date  # inclusive
    deadline: date
    data_lock: date
