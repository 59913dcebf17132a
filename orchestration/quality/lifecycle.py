"""The query lifecycle: open, resolved, overridden, reopened, with every transition kept.

After each run's findings, every query is moved to the state the current
data imply, and each change is written to ``quality.query_events`` with its
time (the table is append-only; ``quality.queries`` holds the current state):

- a problem seen for the first time opens a query;
- an open (or reopened) query whose problem is gone is **resolved**: the
  site's later submission passes the rule (or no longer holds the case; the
  event's note says which);
- a query whose observed value the coordinating centre confirmed
  (``quality.overrides``, keyed by query id and value) is **overridden**;
  the same value coming back stays overridden, a different value **reopens** it;
- a resolved query whose problem comes back is **reopened**.

A scoped run (``scoped=True``) moves only the queries of the sites in the
temp table ``quality_scope``: the other sites' findings did not change, so
their queries are already in the state their data imply and are left as
they are (no event, ``last_seen_at`` kept: it is the time of the last run
that checked the site).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb

from .overrides import pending_requests, settle
from .queries import ensure_query_tables


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def apply_override_requests(con: duckdb.DuckDBPyConnection, folder: Path, now: datetime) -> dict[str, int]:
    """Record pending override requests; a request for an unknown query is refused."""
    ensure_query_tables(con)
    counts = {"applied": 0, "refused": 0}
    for path, request, problem in pending_requests(folder):
        if request is not None and not problem:
            known = con.execute("select count(*) from quality.queries where query_id = ?",
                                [request.query_id]).fetchone()[0]
            problem = "" if known else f"no query {request.query_id} has been raised"
        if problem:
            settle(path, "refused", problem)
            counts["refused"] += 1
            continue
        con.execute("insert or replace into quality.overrides values (?, ?, ?, ?, ?, ?)",
                    [request.query_id, request.observed, request.reason, request.author, now, path.name])
        settle(path, "applied")
        counts["applied"] += 1
    return counts


TRANSITIONS = """
create or replace temp table query_transitions as
with current_findings as (
    select query_id, any_value(site_id) as site_id, min(period) as period, any_value(case_id) as case_id,
           any_value(field) as field, any_value(label) as label, any_value(rule_id) as rule_id,
           max(rule_version) as rule_version, any_value(category) as category, any_value(severity) as severity,
           any_value(level) as level, min(coalesce(observed, '')) as observed, any_value(expected) as expected,
           min(message) as message
    from quality.findings where {scope} group by query_id
), seen as (
    select f.*, o.reason as override_reason, o.author as override_author, o.query_id is not null as is_overridden,
           q.status as from_status, q.observed as previous_observed
    from current_findings f
    left join quality.overrides o on o.query_id = f.query_id and o.observed = f.observed
    left join quality.queries q on q.query_id = f.query_id
)
select query_id, from_status, observed,
       case when from_status is null then 'open'
            when is_overridden then 'overridden'
            when from_status = 'resolved' then 'reopened'
            when from_status = 'overridden' then 'reopened'
            else from_status end as to_status,
       case when from_status is null then null
            when is_overridden and from_status <> 'overridden' then
                 'confirmed by ' || override_author || ': ' || override_reason
            when not is_overridden and from_status = 'overridden' then
                 'the value is now ''' || observed || '''; the override covered ''' || previous_observed || ''''
            when from_status = 'resolved' then 'the problem is back in the current data'
       end as note,
       case when is_overridden then override_author end as author,
       true as is_seen
from seen
union all
select q.query_id, q.status, q.observed, 'resolved',
       case when exists (select 1 from current_rows c where c.site_id = q.site_id and c.case_id = q.case_id)
                 or q.case_id is null
            then 'the current data pass the rule' else 'the case is no longer in the current data' end,
       null, false
from quality.queries q
where q.status in ('open', 'reopened', 'overridden') and {scope_q}
  and q.query_id not in (select query_id from quality.findings where {scope})
"""


def update_queries(con: duckdb.DuckDBPyConnection, now: datetime | None = None, scoped: bool = False,
                   transaction: bool = True) -> dict[str, int]:
    """Move every query (``scoped``: of the sites in ``quality_scope``) to the state today's findings
    imply; return the count of each event. ``transaction=False``: the caller holds one."""
    now = now or utc_now()
    ensure_query_tables(con)
    scope = "site_id in (select site_id from quality_scope)" if scoped else "true"
    con.execute(TRANSITIONS.format(scope=scope, scope_q=("q." + scope) if scoped else "true"))
    if transaction:
        con.execute("begin transaction")
    try:
        # a brand-new query is opened first, even when an override of its value already exists
        con.execute("""
            insert into quality.query_events
            select query_id, 'opened', null, 'open', ?, observed, null, null
            from query_transitions where from_status is null""", [now])
        con.execute("""
            insert into quality.query_events
            select query_id, case to_status when 'open' then 'opened' else to_status end,
                   from_status, to_status, ?, observed, note, author
            from query_transitions where from_status is distinct from to_status and from_status is not null""",
                    [now])
        con.execute("""
            insert into quality.queries
            select f.query_id, f.site_id, f.period, f.case_id, f.field, f.label, f.rule_id, f.rule_version,
                   f.category, f.severity, f.level, f.observed, f.expected, f.message, 'open', ?, ?, ?, 0, null, null
            from (select query_id, any_value(site_id) as site_id, min(period) as period,
                         any_value(case_id) as case_id, any_value(field) as field, any_value(label) as label,
                         any_value(rule_id) as rule_id, max(rule_version) as rule_version,
                         any_value(category) as category, any_value(severity) as severity,
                         any_value(level) as level, min(coalesce(observed, '')) as observed,
                         any_value(expected) as expected, min(message) as message
                  from quality.findings where {scope} group by query_id) f
            join query_transitions t on t.query_id = f.query_id and t.from_status is null""".replace("{scope}", scope),
                    [now, now, now])
        # a new query whose value was already confirmed goes straight on to overridden
        con.execute("""
            insert into quality.query_events
            select t.query_id, 'overridden', 'open', 'overridden', ?, t.observed,
                   'confirmed by ' || o.author || ': ' || o.reason, o.author
            from query_transitions t join quality.overrides o on o.query_id = t.query_id and o.observed = t.observed
            where t.from_status is null""", [now])
        con.execute("""
            update quality.queries q set
                status = case when t.from_status is null and o.query_id is not null then 'overridden'
                              else t.to_status end,
                status_changed_at = case when q.status is distinct from t.to_status then ? else q.status_changed_at end,
                times_reopened = q.times_reopened + (t.to_status = 'reopened' and q.status <> 'reopened')::int,
                override_reason = o.reason, override_author = o.author
            from query_transitions t
            left join quality.overrides o on o.query_id = t.query_id and o.observed = t.observed
            where q.query_id = t.query_id""", [now])
        con.execute("""
            update quality.queries q set
                observed = f.observed, message = f.message, rule_version = f.rule_version, severity = f.severity,
                expected = f.expected, period = f.period, last_seen_at = ?
            from (select query_id, min(coalesce(observed, '')) as observed, min(message) as message,
                         max(rule_version) as rule_version, any_value(severity) as severity,
                         any_value(expected) as expected, min(period) as period
                  from quality.findings where {scope} group by query_id) f
            where q.query_id = f.query_id""".replace("{scope}", scope), [now])
        if transaction:
            con.execute("commit")
    except Exception:
        if transaction:
            con.execute("rollback")
        raise
    return dict(con.execute("""
        select case when from_status is null then 'opened' when to_status = 'open' then 'opened' else to_status end,
               count(*)
        from query_transitions where from_status is distinct from to_status group by 1""").fetchall())
