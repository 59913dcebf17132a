"""Versioned storage of risk models in the warehouse.

``models.model_versions`` has one row per fitted model: measure, window,
fitted_at, the data version (a hash of the submissions and data-quality
grades it was fitted on), the registry version and the model's quality.
``models.coefficients`` holds each version's coefficient table. A model
version is named by its measure, window and data version, so fitting the same
data again yields the same version (and the same numbers); ``is_current``
marks the versions the marts score with.

``models.fit_fingerprints`` records, for each version, what it was fitted on
per site-period: the number of counted cases and a content fingerprint (a sum
of row hashes over each case's id, outcome and risk factors). Comparing it
with the same aggregate over the current data (:func:`current_fingerprints`;
kept per site in ``models.site_case_fingerprints``, so only changed sites
are read) tells how many counted cases are new, removed or
changed since the fit, which is what the refit policy decides on
(:func:`refit_decisions`, docs/decisions/risk-model-refit.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pandas as pd

from ..registry import Registry
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
create table if not exists models.fit_fingerprints (
    model_version varchar not null,
    measure_id varchar not null,
    site_id varchar not null,
    period varchar not null,
    cases bigint not null,
    fingerprint hugeint not null
);
create table if not exists models.site_case_fingerprints (
    site_id varchar not null,
    site_fingerprint varchar not null,
    fingerprint_key varchar not null,
    measure_id varchar not null,
    period varchar not null,
    cases bigint not null,
    fingerprint hugeint not null
);
create table if not exists models.fingerprinted_sites (
    site_id varchar not null,
    site_fingerprint varchar not null,
    fingerprint_key varchar not null
);
"""

FINGERPRINTS = "_current_fingerprints"


def _fingerprint_key(registry: Registry, code: str) -> str:
    """What a site's stored case fingerprints also depend on: each measure's risk factors, and ``code``
    (the dbt project's digest: the staged cases and case outcomes are computed by it)."""
    text = ";".join(f"{m.id}:{','.join(m.risk_factors)}" for m in registry.measures)
    return hashlib.sha256(f"{text}|{code}".encode()).hexdigest()


def _sites_to_fingerprint(con: duckdb.DuckDBPyConnection, key: str) -> tuple[list[str], dict] | None:
    """The sites whose stored case fingerprints are out of date (to delete), and those to compute with
    the site fingerprint to store them under (None: not stored). None when the case outcomes carry no
    site fingerprint: every site is computed and nothing stored.

    A site's case outcomes carry the fingerprint of its inputs (dbt_project/macros/site_fingerprints.sql):
    while it and ``key`` are those the stored rows were computed at, so are the site's counted cases,
    event flags and risk factors. A site whose rows carry two fingerprints is computed and not stored."""
    columns = {name for (name,) in con.execute(
        "select column_name from duckdb_columns() where schema_name = 'intermediate' "
        "and table_name = 'int_case_outcomes'").fetchall()}
    if "site_fingerprint" not in columns:
        return None
    con.execute(DDL)
    rows = con.execute("""
        with now as (
            select site_id, min(site_fingerprint) as lowest, max(site_fingerprint) as highest
            from intermediate.int_case_outcomes where site_id is not null group by site_id
        )
        select coalesce(now.site_id, stored.site_id),
               stored.site_id is not null and (now.site_id is null or stored.fingerprint_key <> ?
                   or stored.site_fingerprint is distinct from now.lowest
                   or stored.site_fingerprint is distinct from now.highest) as is_stale,
               now.site_id is not null and (stored.site_id is null or is_stale) as is_to_compute,
               case when now.lowest = now.highest then now.lowest end
        from now full join models.fingerprinted_sites stored on now.site_id = stored.site_id
        order by 1""", [key]).fetchall()
    return ([site for site, is_stale, _, _ in rows if is_stale],
            {site: fingerprint for site, _, to_compute, fingerprint in rows if to_compute})


def current_fingerprints(con: duckdb.DuckDBPyConnection, registry: Registry,
                         cases: str = "staging.stg_registry__cases", code: str = "") -> None:
    """Fingerprint every measure's counted cases per site-period, into a temporary table.

    Per (measure, site, period) the number of counted cases and the sum of a
    hash of each case's id, event flag and the measure's risk factors, i.e.
    exactly what the fit reads. A case added, removed or changed changes its
    site-period's fingerprint (up to hash collisions). The table
    (``_current_fingerprints``) lives as long as the connection. ``cases`` is
    the staged cases or a temporary copy of them; ``code`` the digest of the
    code that computes them (the dbt project's).

    Each site's rows are kept in ``models.site_case_fingerprints`` under the
    site fingerprint its case outcomes carry, so only sites whose inputs
    changed are read again: a resubmission reads one site's cases, not every
    counted case of the collaborative.
    """
    branches = []
    for measure in registry.measures:
        values = ", ".join(["o.case_id", "o.is_event"] + [f'c."{name}"' for name in measure.risk_factors])
        branches.append(f"when '{measure.id}' then hash({values})")
    fingerprinted = (
        "select o.measure_id, o.site_id, o.period, count(*) as cases, "
        f"sum(case o.measure_id {' '.join(branches)} end)::hugeint as fingerprint "
        f"from intermediate.int_case_outcomes o join {cases} c using (site_id, case_id) "
        "where o.is_counted and {sites} group by all")
    key = _fingerprint_key(registry, code)
    changes = _sites_to_fingerprint(con, key)
    if changes is None:
        con.execute(f"create or replace temporary table {FINGERPRINTS} as {fingerprinted.format(sites='true')}")
        return
    stale, to_compute = changes
    # sites named on both sides, not a subquery: DuckDB then reads only their row groups, through the
    # case view's window too (0.1 s for a site at M, against 1.3 s)
    listed = "({})".format(", ".join("'" + site.replace("'", "''") + "'" for site in to_compute))
    named = f"o.site_id in {listed} and c.site_id in {listed}" if to_compute else "false"
    con.execute(f"create or replace temporary table {FINGERPRINTS} as {fingerprinted.format(sites=named)}")
    stored = {site: fingerprint for site, fingerprint in to_compute.items() if fingerprint is not None}
    con.execute("begin transaction")
    try:
        for table in ("site_case_fingerprints", "fingerprinted_sites"):
            con.execute(f"delete from models.{table} where list_contains(?, site_id)", [stale])
        con.execute("insert into models.fingerprinted_sites select unnest(?::varchar[]), unnest(?::varchar[]), ?",
                    [list(stored), list(stored.values()), key])
        con.execute(f"insert into models.site_case_fingerprints select f.site_id, s.site_fingerprint, ?, "
                    f"f.measure_id, f.period, f.cases, f.fingerprint from {FINGERPRINTS} f "
                    "join models.fingerprinted_sites s using (site_id) where list_contains(?, f.site_id)",
                    [key, list(stored)])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    con.execute(f"insert into {FINGERPRINTS} select measure_id, site_id, period, cases, fingerprint "
                "from models.site_case_fingerprints where not list_contains(?, site_id)", [list(to_compute)])


@dataclass(frozen=True)
class RefitDecision:
    """Whether a measure's current model is kept or refitted, and why (one line)."""

    measure_id: str
    refit: bool
    reason: str
    kept_version: str | None = None
    changed_cases: int | None = None
    counted_cases: int | None = None


def refit_decisions(con: duckdb.DuckDBPyConnection, registry: Registry, window: tuple[str, str],
                    min_change: float) -> dict[str, RefitDecision]:
    """Decide per measure whether to keep its current model version or refit.

    Keep when a current version exists, was fitted for the same registry
    version and window, its fingerprints are recorded, and the cases new,
    removed or changed since (every case of a site-period whose count or
    fingerprint differs, the larger of before and after) are fewer than
    ``min_change`` of the measure's counted cases now; nothing changed keeps
    the version whatever the threshold. Otherwise refit.
    Needs :func:`current_fingerprints` run on ``con`` first.
    """
    con.execute(DDL)
    current = {row[1]: row for row in con.execute(
        "select v.model_version, v.measure_id, v.window_start, v.window_end, v.registry_version, v.cases, "
        "exists (select 1 from models.fit_fingerprints f where f.model_version = v.model_version) "
        "from models.model_versions v where v.is_current").fetchall()}
    changes = {row[0]: (int(row[1]), int(row[2])) for row in con.execute(
        f"""
        with fitted as (
            select f.* from models.fit_fingerprints f
            join models.model_versions v using (model_version) where v.is_current
        )
        select coalesce(n.measure_id, f.measure_id),
               coalesce(sum(greatest(coalesce(n.cases, 0), coalesce(f.cases, 0)))
                   filter (where n.cases is distinct from f.cases or n.fingerprint is distinct from f.fingerprint), 0),
               coalesce(sum(n.cases), 0)
        from {FINGERPRINTS} n
        full join fitted f on n.measure_id = f.measure_id and n.site_id = f.site_id and n.period = f.period
        group by 1""").fetchall()}
    decisions = {}
    for measure in registry.measures:
        row = current.get(measure.id)
        changed, counted = changes.get(measure.id, (0, 0))

        def refit(reason, measure_id=measure.id, changed=changed, counted=counted):
            return RefitDecision(measure_id, True, reason, None, changed, counted)

        if row is None:
            decisions[measure.id] = refit("first fit")
            continue
        version, _, start, end, registry_version, fitted_cases, fingerprinted = row
        if (start, end) != tuple(window):
            decisions[measure.id] = refit(f"reporting window changed ({start}-{end} to {window[0]}-{window[1]})")
        elif registry_version != registry.version:
            decisions[measure.id] = refit(f"registry version changed ({registry_version} to {registry.version})")
        elif not fingerprinted and (fitted_cases or 0) > 0:
            decisions[measure.id] = refit(f"no record of the data {version} was fitted on")
        elif changed == 0:
            decisions[measure.id] = RefitDecision(measure.id, False, f"kept {version}: no counted case changed",
                                                  version, changed, counted)
        else:
            share = changed / counted if counted else float("inf")
            text = f"{changed:,} of {counted:,} counted cases changed ({share:.2%}"
            if share < min_change:
                decisions[measure.id] = RefitDecision(
                    measure.id, False, f"kept {version}: {text} < {min_change:.0%})", version, changed, counted)
            else:
                decisions[measure.id] = refit(f"refitted: {text} >= {min_change:.0%})")
    return decisions


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
                 version_of_data: str, registry_version: str, kept: list[str] = ()) -> list[str]:
    """Store ``models`` (unless that exact version exists) and mark them and the ``kept`` versions current.

    With :func:`current_fingerprints` run on ``con``, each stored model's
    fingerprints (what it was fitted on) are recorded with it.
    """
    con.execute(DDL)
    has_fingerprints = con.execute(
        "select count(*) from duckdb_tables() where temporary and table_name = ?", [FINGERPRINTS]).fetchone()[0] > 0
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
            if has_fingerprints:
                con.execute("delete from models.fit_fingerprints where model_version = ?", [version])
                con.execute(f"insert into models.fit_fingerprints select ?, measure_id, site_id, period, cases, "
                            f"fingerprint from {FINGERPRINTS} where measure_id = ?", [version, model.measure_id])
        versions = versions + list(kept)
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
