"""One refresh of the risk models: keep the current versions or refit them.

This is what the ``risk_models`` asset runs. Per measure the refit policy
(``risk_model_refit_min_change``, docs/decisions/risk-model-refit.md) decides
from fingerprints of the counted cases whether the current model version is
kept or a new one is fitted; only the measures to refit read their cases
into Python.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from ..registry import Measure, Registry
from ..settings import duckdb_fitting_memory_limit, duckdb_memory_limit, parallel_fit_max_cases
from .fit import FittedModel, fit_measure
from .store import FINGERPRINTS, RefitDecision, current_fingerprints, data_version, refit_decisions, store_models

MODEL_CASES = "_model_cases"
STAGED_CASES = "staging.stg_registry__cases"

_NULLABLE_BOOLEAN = {pa.bool_(): pd.BooleanDtype()}.get


def stage_model_cases(con: duckdb.DuckDBPyConnection, registry: Registry) -> str:
    """Copy the staged cases' risk factors into a temporary table, once per refresh that fits.

    ``staging.stg_registry__cases`` is a view (the current row of every
    case: a window over all received rows); reading it once instead of once
    per measure saves most of the fitting step's scans.
    """
    factors = list(dict.fromkeys(name for m in registry.measures for name in m.risk_factors))
    columns = "".join(f', "{name}"' for name in factors)
    con.execute(f"create or replace temporary table {MODEL_CASES} as "
                f"select site_id, case_id{columns} from {STAGED_CASES}")
    return MODEL_CASES


def counted_cases(con: duckdb.DuckDBPyConnection, registry: Registry, measure: Measure,
                  cases: str = STAGED_CASES) -> pd.DataFrame:
    """Every counted case of the measure with its event flag and risk factors.

    Fetched as Arrow (strings stay Arrow-backed, booleans nullable) rather
    than through DuckDB's pandas conversion, and ordered by site and case so
    that the same data always give the same fit to the last bit. ``cases``
    is the staged cases or their copy from :func:`stage_model_cases`.
    """
    columns = ", ".join(f'c."{name}"' for name in measure.risk_factors)
    table = con.execute(
        f"select o.is_event{', ' + columns if columns else ''} "
        "from intermediate.int_case_outcomes o "
        f"join {cases} c using (site_id, case_id) "
        "where o.is_counted and o.measure_id = ? order by o.site_id, o.case_id", [measure.id]).to_arrow_table()
    return table.to_pandas(types_mapper=_NULLABLE_BOOLEAN)


def _a_first_fit(con: duckdb.DuckDBPyConnection, registry: Registry) -> bool:
    """Whether some measure has no current model version (its first fit is certain)."""
    exists = con.execute("select count(*) from duckdb_tables() where schema_name = 'models' "
                         "and table_name = 'model_versions'").fetchone()[0]
    current = set() if not exists else {row[0] for row in con.execute(
        "select measure_id from models.model_versions where is_current").fetchall()}
    return any(measure.id not in current for measure in registry.measures)


def fit_workers(con: duckdb.DuckDBPyConnection, measures: list[Measure]) -> int:
    """How many measures to fit at once: two on a machine with two cores or more while every one has at
    most ``parallel_fit_max_cases`` counted cases (from the fingerprints of this refresh), else one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    if cores < 2 or len(measures) < 2:
        return 1
    largest = con.execute(f"select coalesce(max(cases), 0) from (select measure_id, sum(cases) as cases "
                          f"from {FINGERPRINTS} where list_contains(?, measure_id) group by 1)",
                          [[m.id for m in measures]]).fetchone()[0]
    limit = parallel_fit_max_cases()
    return 2 if 0 < limit and largest <= limit else 1


def fit_measures(con: duckdb.DuckDBPyConnection, registry: Registry, measures: list[Measure], cases: str,
                 workers: int = 1) -> list[FittedModel]:
    """Each measure's model, in the order of ``measures``, fitted ``workers`` at a time.

    The fits are independent and each runs on its own thread with one BLAS thread, so a fit gives the
    same numbers to the last bit however many run at once. The connection is not shared between
    threads: the cases are read one measure at a time, under a lock, while another measure fits.
    """
    if workers <= 1 or len(measures) < 2:
        return [fit_measure(counted_cases(con, registry, m, cases), registry, m) for m in measures]
    reading = threading.Lock()

    def fit(measure: Measure) -> FittedModel:
        with reading:
            frame = counted_cases(con, registry, measure, cases)
        return fit_measure(frame, registry, measure)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fit") as pool:
        return list(pool.map(fit, measures))


@dataclass(frozen=True)
class Refresh:
    decisions: dict[str, RefitDecision]   # measure_id -> kept or refitted, and why
    fitted: list[FittedModel]             # the models fitted in this refresh
    kept: list[str]                       # the model versions kept
    versions: list[str]                   # the current versions after the refresh


def refresh_models(con: duckdb.DuckDBPyConnection, registry: Registry,
                   log: Callable[[str], None] = lambda message: None, code: str = "") -> Refresh:
    """Keep or refit each measure's model on the pooled counted cases of the window; store and mark current.

    ``code``: the digest of the code computing the staged cases and outcomes (the dbt project's), under
    which each site's case fingerprints are kept (:func:`current_fingerprints`)."""
    window = (registry.periods[0].period, registry.periods[-1].period)
    # A measure without a current model will be fitted whatever the fingerprints say: its cases are then
    # staged first and fingerprinted from that copy, not read through the case view twice (0.7 s at M).
    staged = stage_model_cases(con, registry) if _a_first_fit(con, registry) else None
    # reads the changed sites' cases; all a kept model needs
    current_fingerprints(con, registry, cases=staged or STAGED_CASES, code=code)
    decisions = refit_decisions(con, registry, window, registry.policy.risk_model_refit_min_change)
    for decision in decisions.values():
        log(f"{decision.measure_id}: {decision.reason}")
    to_fit = [m for m in registry.measures if decisions[m.id].refit]
    fitted = []
    if to_fit:
        con.execute(f"set memory_limit = '{duckdb_fitting_memory_limit()}'")   # Python holds the design now
        try:
            cases = staged or stage_model_cases(con, registry)
            fitted = fit_measures(con, registry, to_fit, cases, fit_workers(con, to_fit))
        finally:
            con.execute(f"set memory_limit = '{duckdb_memory_limit()}'")   # what connect() gave the connection
    kept = [d.kept_version for d in decisions.values() if not d.refit]
    versions = store_models(con, fitted, window, data_version(con, registry.version), registry.version, kept)
    con.execute(f"drop table if exists {MODEL_CASES}")
    return Refresh(decisions, fitted, kept, versions)
