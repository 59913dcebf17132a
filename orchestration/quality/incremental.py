"""Which sites a quality run must check again, and what the last run saw.

A site's results (findings, grades, queries, scorecard, worklist) depend on
its own inputs only, except for the comparison checks, which the findings
step re-judges for every site from the site-period profile (see
``findings.py``). A site's inputs, reduced to a fingerprint:

- its current submissions: for each period, the submission that is current,
  when it arrived and when the period's first submission arrived (lateness);
- the overrides the coordinating centre recorded on its queries;
- its roster entry (the worklist shows the display name).

The rules fingerprint covers everything that applies to every site: the
registry's id and version, dictionary, calendar, policy, its ``rules.yaml``,
the rule and site-check catalogues and this engine's version. When it
changes (or nothing was recorded, or a table is missing, or ``full=True`` /
``CQI_QUALITY_FULL=1``) every site is checked.

``quality.checked_sites`` keeps, per site, the fingerprint the last run
checked and whether its worklist still has to be written; it is replaced in
the transaction that writes the results, so a failed run leaves it as the
results it describes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime

import duckdb

from ..registry import Registry
from . import site_checks
from .rules import all_row_rules, registry_rules_document

ENGINE_VERSION = 1      # raise when a change of the quality code changes results: every site is checked again
FULL_ENV = "CQI_QUALITY_FULL"

CHECKED_SITES_DDL = """
create table if not exists quality.checked_sites (
    site_id varchar primary key,
    fingerprint varchar not null,        -- the site's inputs the results were computed from
    rules_fingerprint varchar not null,  -- the registry, rules and engine they were computed with
    checked_at timestamp not null,       -- when the site's rows were last checked
    worklist_due boolean not null        -- the results changed since the worklist was last written
)
"""

RESULT_TABLES = ("findings", "site_period_profile", "site_period_status", "scorecards", "checked_sites")

SITE_INPUTS = """
create or replace temp table site_inputs as
with roster as (
    select unnest(?::varchar[]) as site_id, unnest(?::varchar[]) as entry
), submitted as (
    select site_id, string_agg(period || '|' || submission_id || '|' || cast(current_received_at as varchar)
                               || '|' || cast(first_received_at as varchar), ';' order by period) as periods
    from site_period_submissions group by site_id
), confirmed as (
    select q.site_id, string_agg(o.query_id || '|' || o.observed || '|' || o.reason || '|' || o.author, ';'
                                 order by o.query_id, o.observed) as overrides
    from quality.overrides o join quality.queries q using (query_id) group by q.site_id
), sites as (
    select site_id from roster union select site_id from submitted union select site_id from confirmed
    union select site_id from quality.checked_sites
)
select s.site_id, md5(coalesce(r.entry, '(not on the roster)') || '#' || coalesce(p.periods, '')
                      || '#' || coalesce(c.overrides, '')) as fingerprint
from sites s
left join roster r using (site_id)
left join submitted p using (site_id)
left join confirmed c using (site_id)
"""


@dataclass(frozen=True)
class Plan:
    full: bool
    reason: str                 # why every site is checked ('' when scoped)
    checked: list[str]          # sites whose rows are read again
    sites: int                  # sites known (roster, data, overrides, last run)

    @property
    def unchanged(self) -> int:
        return self.sites - len(self.checked)


def rules_fingerprint(registry: Registry) -> str:
    """What applies to every site: registry, dictionary, calendar, policy, rules and this engine."""
    parts = [f"engine {ENGINE_VERSION}", registry.id, registry.version, registry.unit, repr(registry.calendar),
             repr(registry.policy), *map(repr, registry.variables), repr(registry_rules_document(registry)),
             *map(repr, all_row_rules(registry)), *map(repr, site_checks.site_checks_for(registry)),
             repr((site_checks.VERSION, site_checks.DISTRIBUTION_THRESHOLD, site_checks.DISTRIBUTION_Z,
                   site_checks.MIN_VALUES))]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def full_requested() -> bool:
    return os.environ.get(FULL_ENV, "").strip().lower() in ("1", "true", "yes")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("select table_name from information_schema.tables "
                                      "where table_schema = 'quality'").fetchall()}


def plan(con: duckdb.DuckDBPyConnection, registry: Registry, full: bool = False) -> Plan:
    """Fingerprint every site (temp table ``site_inputs``) and choose the sites to check (temp table
    ``quality_checked``). Needs the temp table ``site_period_submissions``."""
    con.execute(CHECKED_SITES_DDL)
    roster = registry.sites
    con.execute(SITE_INPUTS, [[s.site_id for s in roster], [repr(s) for s in roster]])
    reason = ""
    if full or full_requested():
        reason = "a full run was asked for"
    elif missing := [t for t in RESULT_TABLES if t not in _tables(con)]:
        reason = f"no quality.{missing[0]} yet"
    else:
        recorded = {r[0] for r in con.execute("select distinct rules_fingerprint from quality.checked_sites").fetchall()}
        if not recorded:
            reason = "no site has been checked yet"
        elif recorded != {rules_fingerprint(registry)}:
            reason = "the registry or its rules changed"
    if reason:
        con.execute("create or replace temp table quality_checked as select site_id from site_inputs")
    else:
        con.execute("create or replace temp table quality_checked as "
                    "select i.site_id from site_inputs i left join quality.checked_sites c using (site_id) "
                    "where c.fingerprint is distinct from i.fingerprint")
    checked = [r[0] for r in con.execute("select site_id from quality_checked order by site_id").fetchall()]
    sites = con.execute("select count(*) from site_inputs").fetchone()[0]
    return Plan(bool(reason), reason, checked, sites)


def record(con: duckdb.DuckDBPyConnection, registry: Registry, now: datetime) -> None:
    """Replace ``quality.checked_sites`` with what this run saw (call inside the run's transaction)."""
    con.execute("""
        create or replace temp table checked_now as
        select i.site_id, i.fingerprint, ? as rules_fingerprint,
               case when i.site_id in (select site_id from quality_checked) then ?::timestamp
                    else c.checked_at end as checked_at,
               coalesce(c.worklist_due, true) or i.site_id in (select site_id from quality_scope) as worklist_due
        from site_inputs i left join quality.checked_sites c using (site_id)""", [rules_fingerprint(registry), now])
    con.execute("delete from quality.checked_sites")
    con.execute("insert into quality.checked_sites select * from checked_now order by site_id")


def worklists_written(con: duckdb.DuckDBPyConnection, sites: list[str]) -> None:
    con.execute("update quality.checked_sites set worklist_due = false where site_id in (select unnest(?::varchar[]))",
                [sites])


def worklists_due(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("select site_id from quality.checked_sites where worklist_due").fetchall()}
