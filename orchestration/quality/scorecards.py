"""Site scorecards: one row per site and period, the state of its current submission.

Beside the grade (``quality.site_period_status``): the submission graded, when
it arrived against the deadline, completeness, open queries per Kahn
category, overridden queries, and the trend against the site's previous
period (better, worse or the same grade; more or fewer open queries), so a
site and the coordinating centre see whether its data are getting better.
"""

from __future__ import annotations

import duckdb

CATEGORIES = ("conformance", "completeness", "plausibility", "timeliness")

SCORECARDS = """
with queries as (
    select site_id, period,
           count(*) filter (where status in ('open', 'reopened')) as open_queries,
           count(*) filter (where status in ('open', 'reopened') and severity = 'blocking') as open_blocking_queries,
           count(*) filter (where status = 'overridden') as overridden_queries,
           {per_category}
    from quality.queries where SCOPE group by all
), joined as (
    select g.site_id, g.period, s.submission_id, s.current_received_at as received_at, s.deadline, s.days_late,
           g.cases, g.completeness, g.status,
           coalesce(q.open_queries, 0) as open_queries,
           coalesce(q.open_blocking_queries, 0) as open_blocking_queries,
           coalesce(q.overridden_queries, 0) as overridden_queries,
           {category_columns},
           g.blocking_checks_failed, g.warning_checks_failed
    from quality.site_period_status g
    left join site_period_submissions s using (site_id, period)
    left join queries q using (site_id, period)
    where g.SCOPE
), trended as (
    select *,
           lag(status) over (partition by site_id order by period) as previous_status,
           open_queries - lag(open_queries) over (partition by site_id order by period) as open_queries_change
    from joined
)
select *,
       case when previous_status is null then 'first period'
            when {rank}(status) < {rank}(previous_status) then 'better'
            when {rank}(status) > {rank}(previous_status) then 'worse'
            else 'same' end as trend
from trended
order by site_id, period
"""


def _rank(column: str) -> str:
    return f"(case {column} when 'green' then 0 when 'yellow' then 1 else 2 end)"


def write_scorecards(con: duckdb.DuckDBPyConnection, scoped: bool = False) -> int:
    """Replace ``quality.scorecards`` (needs this run's ``site_period_submissions`` temp table);
    ``scoped``: only the rows of the sites in the temp table ``quality_scope`` (a site's scorecard
    reads only its own grades and queries)."""
    per_category = ",\n           ".join(
        f"count(*) filter (where status in ('open', 'reopened') and category = '{c}') as {c}_open" for c in CATEGORIES)
    category_columns = ", ".join(f"coalesce(q.{c}_open, 0) as {c}_open" for c in CATEGORIES)
    sql = SCORECARDS.format(per_category=per_category, category_columns=category_columns, rank="RANK_FN")
    sql = sql.replace("RANK_FN(status)", _rank("status")).replace("RANK_FN(previous_status)", _rank("previous_status"))
    if scoped:
        sql = sql.replace("g.SCOPE", "g.site_id in (select site_id from quality_scope)")
        sql = sql.replace("SCOPE", "site_id in (select site_id from quality_scope)")
        con.execute("delete from quality.scorecards where site_id in (select site_id from quality_scope)")
        con.execute(f"insert into quality.scorecards {sql}")
    else:
        sql = sql.replace("g.SCOPE", "true").replace("SCOPE", "true")
        con.execute(f"create or replace table quality.scorecards as {sql}")
    return con.execute("select count(*) from quality.scorecards").fetchone()[0]
