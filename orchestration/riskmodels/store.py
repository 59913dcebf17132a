"""Versioned storage of risk models in the warehouse.

``models.model_versions`` has one row per fitted model: measure, window,
fitted_at, the data version (a hash of the submissions and data-quality
grades it was fitted on), the registry version and the model's quality.
``models.coefficients`` holds each version's coefficient table. A model
version is named by its measure, window and data version, so fitting the same
data again yields the same version (and the same numbers); ``is_current``
marks the versions the marts score with.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import duckdb
import pandas as pd

from .fit import FittedModel

DDL = """
create schema if not exists models;
create table if not exists models.model_versions (
    model_version varchar primary key,
    measure_id varchar not null,
    window_start varchar not null,
    window_end varchar not null,
    fitted_at timestamp not null,
    data_version varchar not null,
    registry_version varchar not null,
    risk_adjusted boolean not null,
    cases bigint, events bigint,
    c_statistic double, calibration_intercept double, calibration_slope double,
    hosmer_lemeshow_statistic double, hosmer_lemeshow_p double, brier_score double,
    separation boolean,
    is_current boolean not null
);
create table if not exists models.coefficients (
    model_version varchar not null,
    measure_id varchar not null,
    term varchar not null,
    estimate double,
    std_error double,
    variable varchar,
    kind varchar not null,
    level varchar,
    levels varchar,
    impute_value double
);
"""


def data_version(con: duckdb.DuckDBPyConnection, registry_version: str) -> str:
    """A hash of what the models are fitted on: current submissions and their grades."""
    rows = con.execute(
        "select c.site_id, c.period, c.submission_id, coalesce(q.status, '') "
        "from intake.current_submission_periods c "
        "left join quality.site_period_status q using (site_id, period) order by 1, 2").fetchall()
    digest = hashlib.sha256(registry_version.encode())
    for row in rows:
        digest.update("|".join(map(str, row)).encode() + b"\n")
    return digest.hexdigest()


def store_models(con: duckdb.DuckDBPyConnection, models: list[FittedModel], window: tuple[str, str],
                 version_of_data: str, registry_version: str) -> list[str]:
    """Store ``models`` (unless that exact version exists) and mark them current."""
    con.execute(DDL)
    versions = []
    fitted_at = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        for model in models:
            version = f"{model.measure_id}.{window[0]}-{window[1]}.{version_of_data[:12]}"
            versions.append(version)
            exists = con.execute("select count(*) from models.model_versions where model_version = ?",
                                 [version]).fetchone()[0]
            if not exists:
                q = model.quality
                con.execute(
                    "insert into models.model_versions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false)",
                    [version, model.measure_id, window[0], window[1], fitted_at, version_of_data, registry_version,
                     model.risk_adjusted, q["cases"], q["events"], q["c_statistic"], q["calibration_intercept"],
                     q["calibration_slope"], q["hosmer_lemeshow_statistic"], q["hosmer_lemeshow_p"],
                     q["brier_score"], q["separation"]])
                frame = model.coefficients.assign(model_version=version, measure_id=model.measure_id)
                con.register("_coefficients", frame)
                con.execute("insert into models.coefficients select model_version, measure_id, term, estimate, "
                            "std_error, variable, kind, level, levels, impute_value from _coefficients")
                con.unregister("_coefficients")
        con.execute("update models.model_versions set is_current = list_contains(?, model_version)", [versions])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return versions


def current_coefficients(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        "select c.* from models.coefficients c join models.model_versions v using (model_version) "
        "where v.is_current order by c.measure_id, c.term").df()
