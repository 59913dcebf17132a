"""The floor: the cycle's essential work done directly in DuckDB, with no orchestration.

Why a floor: a wall time alone does not say whether the pipeline is slow or
the work is big. The floor reads every file with one ``read_csv``, casts and
pseudonymises with the intake's own column SQL, runs the dictionary's
row-level rules (``orchestration.quality.rules``: required, code list, range
and the registry's hand-written ones such as date order) and grades each
site-period, then computes each measure's observed and expected events per
site-period from the fitted coefficients. No ledger, no receipts, no
worklists, no model fit, no publication: what is left is what no pipeline
can avoid, so ``figure / floor`` measures the cost of everything else.
"""

from __future__ import annotations

import json
import time

import duckdb
import pandas as pd

from orchestration.intake.cast import period_expression, trimmed, typed_columns
from orchestration.quality.rules import rules_for
from orchestration.registry import Registry

SECRET = b"benchmark-floor"


def _q(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _files_literal(files: list[str]) -> str:
    return "[" + ", ".join(_q(f) for f in files) + "]"


def read_cases(con: duckdb.DuckDBPyConnection, registry: Registry, files: list[str]) -> int:
    """All files into one typed, pseudonymised table ``cases`` (latest row per site and case).

    One pass: read, trim, cast and pseudonymise in a single statement. The
    files share the dictionary's header (the whole-file problems are left
    out), so no ``union_by_name``: it costs four times the read, and a file
    whose header differs makes ``read_csv`` fail rather than misalign.
    """
    names = [v.name for v in registry.variables]
    columns = {name: f"c{i}" for i, name in enumerate(names)}
    renamed = ", ".join(f'"{name}" as {columns[name]}' for name in names)
    cells = ", ".join(f"nullif({trimmed(c)}, '') as {c}" for c in columns.values())
    typed = typed_columns(registry, columns, SECRET)
    selects = ", ".join(f'{sql} as "{name}"' for name, sql in typed.items())
    con.execute("pragma disable_optimizer")   # as intake: the optimizer spends seconds on these wide projections
    # rows in the files' order, numbered by rowid as intake does: a row_number() over () window here held
    # every cell of the scan before writing it (2.3 s at M in intake's read)
    con.execute(f"create or replace temp table typed_rows as select {selects} from ("
                f"  select {cells} from ("
                f"    select {renamed} from read_csv({_files_literal(files)}, all_varchar = true, header = true)))")
    con.execute("pragma enable_optimizer")
    period = period_expression("operation_date", registry.calendar.period_length)
    con.execute(f"create or replace temp table cases as select *, rowid as row_number, {period} as period "
                f"from typed_rows where case_id is not null "
                f"qualify row_number() over (partition by site_id, case_id order by rowid desc) = 1")
    con.execute("drop table typed_rows")
    return con.execute("select count(*) from cases").fetchone()[0]


def check_rows(con: duckdb.DuckDBPyConnection, registry: Registry) -> int:
    """Every row-level rule as SQL, then a grade per site-period (red: a blocking rule over its threshold)."""
    rules = rules_for(registry)
    union = " union all ".join(
        f"select site_id, period, row_number, {_q(r.rule_id)} as rule_id, {_q(r.severity)} as severity, "
        f"{r.threshold} as threshold from cases where {r.fails_when}" for r in rules)
    con.execute(f"create or replace temp table findings as {union}")
    con.execute("""
        create or replace temp table grades as
        with volume as (select site_id, period, count(*) as n from cases group by all),
        failed as (
            select f.site_id, f.period, f.severity, count(distinct f.row_number) > any_value(f.threshold) * any_value(v.n)
                   as check_failed
            from findings f join volume v using (site_id, period) group by f.site_id, f.period, f.rule_id, f.severity
        )
        select v.site_id, v.period,
               not coalesce(bool_or(check_failed and severity = 'blocking'), false) as is_included
        from volume v left join failed using (site_id, period) group by all
    """)
    return con.execute("select count(*) from findings").fetchone()[0]


def _linear_predictor(coefficients: pd.DataFrame) -> str:
    """The scoring of ``fct_case_risk`` as one SQL expression over the wide case row."""
    terms = []
    categorical: dict[str, list[str]] = {}
    for row in coefficients.itertuples():
        value = f'try_cast("{row.variable}" as double)' if isinstance(row.variable, str) else None
        if row.kind == "intercept":
            terms.append(f"{row.estimate!r}")
        elif row.kind in ("numeric", "boolean"):
            terms.append(f"{row.estimate!r} * coalesce({value}, {row.impute_value!r})")
        elif row.kind == "missing_indicator":
            terms.append(f"{row.estimate!r} * cast({value} is null as double)")
        elif row.kind in ("level", "reference"):
            levels = json.loads(row.levels) if isinstance(row.levels, str) else []
            categorical.setdefault(row.variable, []).extend(f"when {_q(level)} then {row.estimate!r}"
                                                            for level in levels)
    for variable, whens in categorical.items():
        terms.append(f"(case coalesce(cast(\"{variable}\" as varchar), '(missing)') {' '.join(whens)} else 0 end)")
    return " + ".join(terms) or "0"


def observed_expected(con: duckdb.DuckDBPyConnection, registry: Registry, coefficients: pd.DataFrame) -> int:
    """Cases, observed and expected events per site, period and measure (included site-periods)."""
    parts = []
    for measure in registry.measures:
        exclusions = " or ".join(f"coalesce(({sql}), false)" for sql in measure.exclusions.values()) or "false"
        lp = _linear_predictor(coefficients[coefficients["measure_id"] == measure.id])
        parts.append(
            f"select site_id, period, {_q(measure.id)} as measure_id, coalesce(cast(({measure.event}) as boolean), false) as is_event, "
            f"1 / (1 + exp(-({lp}))) as p from cases "
            f"where coalesce(cast(({measure.denominator}) as boolean), false) and not ({exclusions}) "
            f"and cast(({measure.event}) as boolean) is not null")
    con.execute(f"""
        create or replace temp table site_period_results as
        select s.site_id, s.period, s.measure_id, count(*) as cases, count(*) filter (where is_event) as observed,
               round(sum(p), 9) as expected
        from ({' union all '.join(parts)}) s join grades g using (site_id, period)
        where g.is_included group by all
    """)
    return con.execute("select count(*) from site_period_results").fetchone()[0]


def run_floor(registry: Registry, files: list[str], coefficients: pd.DataFrame, threads: int | None = None) -> dict:
    """Run the three parts on an in-memory DuckDB and return their times and sizes."""
    timings, sizes = {}, {}
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    if threads:
        con.execute(f"set threads = {threads}")
    mark = time.perf_counter()
    sizes["rows"] = read_cases(con, registry, files)
    timings["read_cast"] = time.perf_counter() - mark
    mark = time.perf_counter()
    sizes["findings"] = check_rows(con, registry)
    timings["checks"] = time.perf_counter() - mark
    mark = time.perf_counter()
    sizes["site_period_measures"] = observed_expected(con, registry, coefficients)
    timings["observed_expected"] = time.perf_counter() - mark
    results = con.execute("select * from site_period_results order by all").df()
    con.close()
    return {"parts_s": timings, "sizes": sizes, "files": len(files), "results": results}
