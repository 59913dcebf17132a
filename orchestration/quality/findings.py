"""Running the checks over the current rows and grading each site-period.

Findings are recomputed from scratch on every run over the *current* version
of each site-period (the latest accepted submission covering it), so a
corrected resubmission makes its old findings disappear; the query lifecycle
(``lifecycle.py``) turns that disappearance into a resolution.

A run may be scoped to the sites whose inputs changed (``incremental.py``):
then ``current_rows`` holds only those sites' rows, their findings are
replaced and every other site's are kept. The checks that compare a
site-period with the collaborative (missingness, distribution) read the
per-site-period profile ``quality.site_period_profile`` instead of the rows,
so they are re-judged for every site at the cost of a few hundred profile
rows; a site whose comparison findings changed that way (the collaborative's
figures moved) is regraded and its queries and worklist follow.

This SQL path is the production path (a million rows in seconds). The Great
Expectations suites in ``expectations/`` are generated from the same rules
and a test proves both give the same failures (``gx_validate.py``).
"""

from __future__ import annotations

import duckdb

from ..registry import Registry
from .queries import MESSAGE_SQL, QUERY_ID_SQL
from .rules import Rule, rules_for
from .site_checks import (FINDING_COLUMNS, build_site_period_submissions, collaborative_figures,
                          comparison_checks, comparison_findings_sql, profile_sql, site_checks_for,
                          timeliness_findings_sql)

FINDINGS_DDL = """
create or replace temp table staged_findings (
    site_id varchar, period varchar, case_id varchar, submission_id varchar, row_number bigint,
    field varchar, rule_id varchar, rule_version integer, category varchar, severity varchar,
    observed varchar, expected varchar, definition varchar, label varchar, problem varchar,
    level varchar, affects_grade boolean
)
"""

CURRENT_ROWS = """
select c.* from raw.cases c
join intake.current_submission_periods s
  on c.submission_id = s.submission_id and c.period = s.period
"""


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _observed(rule: Rule, registry: Registry) -> str:
    """A direct identifier's value never enters a quality table (its pseudonym or age does)."""
    return f'cast("{rule.column}" as varchar)'


def _rule_select(rule: Rule, registry: Registry) -> str:
    return (
        f"select site_id, period, case_id, submission_id, row_number, {_q(rule.field)}, {_q(rule.rule_id)}, "
        f"{rule.version}, {_q(rule.category)}, {_q(rule.severity)}, {_observed(rule, registry)}, "
        f"{_q(rule.expected)}, {_q(rule.definition)}, {_q(rule.label)}, {_q(rule.problem_text())}, 'row', true "
        f"from current_rows where {rule.fails_when}"
    )


def _dictionary_frame(registry: Registry) -> tuple[list, list, list, list]:
    names = [v.name for v in registry.variables]
    return (names, [v.definition for v in registry.variables], [v.label for v in registry.variables],
            [v.direct_identifier for v in registry.variables])


CHECKED = "(select site_id from quality_checked)"     # temp table: the sites re-read this run
SCOPE = "(select site_id from quality_scope)"         # temp table: the sites whose results may change


def compute_findings(con: duckdb.DuckDBPyConnection, registry: Registry, scoped: bool = False) -> int:
    """Replace ``quality.findings``, ``quality.site_period_profile`` and ``quality.site_period_status``;
    return the finding count.

    ``scoped``: only the sites of the temp table ``quality_checked`` are read again (their rows,
    findings and profile replaced); the temp table ``quality_scope`` (created here) receives them
    plus every site whose comparison findings changed; grades are replaced for those sites only.
    Without it everything is recomputed from the current rows."""
    con.execute("create schema if not exists quality")
    site_filter = f" where s.site_id in {CHECKED}" if scoped else ""
    con.execute(f"create or replace temp table current_rows as {CURRENT_ROWS}{site_filter}")
    build_site_period_submissions(con, registry)
    con.execute(FINDINGS_DDL)
    # row-level checks over the rows read (none when a scoped run found no site changed)
    if not scoped or con.execute("select count(*) from current_rows").fetchone()[0]:
        for rule in rules_for(registry):
            con.execute(f"insert into staged_findings ({FINDING_COLUMNS}) {_rule_select(rule, registry)}")
        names, definitions, labels, identifying = _dictionary_frame(registry)
        con.execute(
            f"insert into staged_findings ({FINDING_COLUMNS}) "
            "select c.site_id, c.period, c.case_id, f.submission_id, f.row_number, f.field, "
            "'conformance.type.' || f.field, 1, 'conformance', 'blocking', "
            "case when d.identifying then '(withheld: identifier)' else f.value end, "
            "'a value of the declared type', d.definition, d.label, "
            "'the value ''{value}'' ' || f.problem, 'row', true "
            "from intake.cell_findings f "
            "join current_rows c on c.submission_id = f.submission_id and c.row_number = f.row_number "
            "join (select unnest(?) as field, unnest(?) as definition, unnest(?) as label, unnest(?) as identifying) d "
            "on d.field = f.field",
            [names, definitions, labels, identifying])
        identifier = registry.variable("case_id")
        con.execute(
            f"insert into staged_findings ({FINDING_COLUMNS}) "
            "select site_id, period, case_id, submission_id, row_number, 'case_id', 'plausibility.duplicate_case', 1, "
            "'plausibility', 'blocking', case_id, 'each case number once per site', ?, ?, "
            "'the case number ''{value}'' appears ' || copies || ' times in the site''s current data', 'row', true "
            "from (select *, count(*) over (partition by site_id, case_id) as copies from current_rows) "
            "where copies > 1",
            [identifier.definition, identifier.label])
    checks = site_checks_for(registry)
    for statement in timeliness_findings_sql(registry, checks, f"site_id in {CHECKED}" if scoped else "true"):
        con.execute(statement.replace("insert into quality.findings", "insert into staged_findings"))

    # the site-period profile: replaced for the sites read, kept for the others
    profile = profile_sql(registry, checks)
    if scoped:
        con.execute(f"delete from quality.site_period_profile where site_id in {CHECKED}")
        con.execute(f"insert into quality.site_period_profile {profile}")
    else:
        con.execute(f"create or replace table quality.site_period_profile as {profile} order by site_id, period")

    # comparison checks for every site-period, from the profile (the collaborative's figures)
    con.execute(FINDINGS_DDL.replace("staged_findings", "comparison_findings"))
    figures = collaborative_figures(con, checks, "quality.site_period_profile")
    for statement in comparison_findings_sql(registry, checks, figures):
        con.execute(statement.replace("insert into quality.findings", "insert into comparison_findings"))

    enriched = f"*, {QUERY_ID_SQL} as query_id, {MESSAGE_SQL} as message"
    if not scoped:
        con.execute(f"create or replace table quality.findings as select {enriched} from "
                    "(select * from staged_findings union all by name select * from comparison_findings)")
        con.execute("create or replace temp table quality_scope as "
                    "select distinct site_id from quality.findings union select site_id from current_rows")
    else:
        comparison_ids = [c.check_id for c in comparison_checks(checks)]
        columns = FINDING_COLUMNS
        con.execute(f"""
            create or replace temp table quality_scope as
            select site_id from quality_checked
            union
            select site_id from (
                (select {columns} from comparison_findings
                 except all
                 select {columns} from quality.findings where rule_id in (select unnest(?)))
                union all
                (select {columns} from quality.findings where rule_id in (select unnest(?))
                 except all
                 select {columns} from comparison_findings))""", [comparison_ids, comparison_ids])
        con.execute(f"delete from quality.findings where site_id in {CHECKED} "
                    f"or (site_id in {SCOPE} and rule_id in (select unnest(?)))", [comparison_ids])
        con.execute(f"insert into quality.findings select {enriched} from staged_findings")
        con.execute(f"insert into quality.findings select {enriched} from comparison_findings "
                    f"where site_id in {SCOPE}")
    grade(con, registry, scoped)
    return con.execute("select count(*) from quality.findings").fetchone()[0]


def _has_overrides(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("select count(*) from information_schema.tables "
                       "where table_schema = 'quality' and table_name = 'overrides'").fetchone()[0] > 0


def grade(con: duckdb.DuckDBPyConnection, registry: Registry, scoped: bool = False) -> None:
    """Grade each site-period, OHDSI-DQD style: a row check fails when the share
    of rows failing it exceeds its threshold; a site-period check that raised
    a finding has failed. Red: a blocking check failed. Yellow: a warning
    check failed or required fields are incomplete. Green: neither. A finding
    the coordinating centre overrode (for that value) counts for nothing.
    Every failing row is a query whatever the grade.

    Reads ``quality.site_period_profile``; ``scoped``: only the sites of the
    temp table ``quality_scope`` are regraded, the others' rows are kept."""
    thresholds = {r.rule_id: r.threshold for r in rules_for(registry)}
    required = [v.warehouse_name for v in registry.variables if v.required]
    in_scope = f"site_id in {SCOPE}" if scoped else "true"
    overridden = ("exists (select 1 from quality.overrides o where o.query_id = f.query_id "
                  "and o.observed = coalesce(f.observed, ''))" if _has_overrides(con) else "false")
    graded = f"""
        with volume as (
            select site_id, period, n as cases, filled / ({len(required)} * n) as completeness
            from quality.site_period_profile where {in_scope}
        ), counted as (
            select f.*, {overridden} as is_overridden from quality.findings f where {in_scope}
        ), per_check as (
            select site_id, period, rule_id, any_value(severity) as severity, any_value(level) as level,
                   count(distinct row_number || '/' || submission_id) as failing_rows, count(*) as findings
            from counted where not is_overridden and affects_grade group by all
        ), failed_checks as (
            select p.site_id, p.period, p.severity, p.findings,
                   case when p.level = 'site_period' then true
                        else p.failing_rows > coalesce(t.threshold, {registry.policy.rule_failure_threshold}) * v.cases
                   end as check_failed
            from per_check p join volume v using (site_id, period)
            left join (select unnest(?) as rule_id, unnest(?) as threshold) t using (rule_id)
        ), blocking as (
            select site_id, period, sum(findings) as blocking_findings,
                   count(*) filter (where check_failed) as blocking_checks_failed
            from failed_checks where severity = 'blocking' group by all
        ), warnings as (
            select site_id, period, sum(findings) as warning_findings,
                   count(*) filter (where check_failed) as warning_checks_failed
            from failed_checks where severity = 'warning' group by all
        ), overrides as (
            select site_id, period, count(*) as overridden_findings from counted where is_overridden group by all
        )
        select v.site_id, v.period, v.cases, round(v.completeness, 6) as completeness,
               coalesce(b.blocking_findings, 0) as blocking_findings,
               coalesce(b.blocking_checks_failed, 0) as blocking_checks_failed,
               coalesce(w.warning_findings, 0) as warning_findings,
               coalesce(w.warning_checks_failed, 0) as warning_checks_failed,
               coalesce(o.overridden_findings, 0) as overridden_findings,
               case when coalesce(b.blocking_checks_failed, 0) > 0 then 'red'
                    when coalesce(w.warning_checks_failed, 0) > 0
                         or v.completeness < {registry.policy.completeness_threshold} then 'yellow'
                    else 'green' end as status
        from volume v
        left join blocking b using (site_id, period)
        left join warnings w using (site_id, period)
        left join overrides o using (site_id, period)
        order by site_id, period
    """
    parameters = [list(thresholds), list(thresholds.values())]
    if scoped:
        con.execute(f"delete from quality.site_period_status where {in_scope}")
        con.execute(f"insert into quality.site_period_status {graded}", parameters)
    else:
        con.execute(f"create or replace table quality.site_period_status as {graded}", parameters)
