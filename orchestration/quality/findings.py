"""Running the rules over the current rows and grading each site-period.

Findings are recomputed from scratch on every run over the *current* version
of each site-period (the latest accepted submission covering it), so a
corrected resubmission makes its old findings disappear.
"""

from __future__ import annotations

import duckdb

from ..registry import Registry
from .rules import Rule, rules_for

FINDINGS_DDL = """
create or replace table quality.findings (
    site_id varchar, period varchar, case_id varchar, submission_id varchar, row_number bigint,
    field varchar, rule_id varchar, rule_version integer, category varchar, severity varchar,
    observed varchar, expected varchar, definition varchar
)
"""

CURRENT_ROWS = """
select c.* from raw.cases c
join intake.current_submission_periods s
  on c.submission_id = s.submission_id and c.period = s.period
"""


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rule_select(rule: Rule) -> str:
    return (
        f"select site_id, period, case_id, submission_id, row_number, {_q(rule.field)}, {_q(rule.rule_id)}, "
        f"{rule.version}, {_q(rule.category)}, {_q(rule.severity)}, cast(\"{rule.column}\" as varchar), "
        f"{_q(rule.expected)}, {_q(rule.definition)} from current_rows where {rule.fails_when}"
    )


def compute_findings(con: duckdb.DuckDBPyConnection, registry: Registry) -> int:
    """Replace ``quality.findings`` and ``quality.site_period_status``; return the finding count."""
    definitions = {v.name: v.definition for v in registry.variables}
    con.execute(f"create or replace temp view current_rows as {CURRENT_ROWS}")
    con.execute(FINDINGS_DDL)
    for rule in rules_for(registry):
        con.execute(f"insert into quality.findings {_rule_select(rule)}")
    con.execute(
        "insert into quality.findings "
        "select c.site_id, c.period, c.case_id, f.submission_id, f.row_number, f.field, "
        "'conformance.type.' || f.field, 1, 'conformance', 'blocking', f.value, f.problem, d.definition "
        "from intake.cell_findings f "
        "join current_rows c on c.submission_id = f.submission_id and c.row_number = f.row_number "
        "join (select unnest(?) as field, unnest(?) as definition) d on d.field = f.field",
        [list(definitions), list(definitions.values())])
    con.execute(
        "insert into quality.findings "
        "select site_id, period, case_id, submission_id, row_number, 'case_id', 'plausibility.duplicate_case', 1, "
        "'plausibility', 'blocking', case_id, 'each case number once per site', ? from ("
        "  select *, count(*) over (partition by site_id, case_id) as copies from current_rows"
        ") where copies > 1",
        [definitions["case_id"]])
    _grade(con, registry)
    return con.execute("select count(*) from quality.findings").fetchone()[0]


def _grade(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    """Grade each site-period, OHDSI-DQD style: a check fails when the share of
    rows failing it exceeds its threshold. Red: a blocking check failed.
    Yellow: a warning check failed or required fields are incomplete. Green:
    neither. Every failing row is a query whatever the grade."""
    thresholds = {r.rule_id: r.threshold for r in rules_for(registry)}
    required = [v.warehouse_name for v in registry.variables if v.required]
    filled = " + ".join(f'(count("{c}"))' for c in required)
    con.execute(f"""
        create or replace table quality.site_period_status as
        with volume as (
            select site_id, period, count(*) as cases,
                   ({filled}) / ({len(required)} * count(*)) as completeness
            from current_rows group by all
        ), per_check as (
            select f.site_id, f.period, f.rule_id, any_value(f.severity) as severity,
                   count(distinct f.row_number || '/' || f.submission_id) as failing_rows
            from quality.findings f group by all
        ), failed_checks as (
            select p.site_id, p.period, p.severity, p.failing_rows,
                   p.failing_rows > coalesce(t.threshold, {registry.policy.rule_failure_threshold}) * v.cases as check_failed
            from per_check p join volume v using (site_id, period)
            left join (select unnest(?) as rule_id, unnest(?) as threshold) t using (rule_id)
        ), blocking as (
            select site_id, period, sum(failing_rows) as blocking_findings,
                   count(*) filter (where check_failed) as blocking_checks_failed
            from failed_checks where severity = 'blocking' group by all
        ), warnings as (
            select site_id, period, sum(failing_rows) as warning_findings,
                   count(*) filter (where check_failed) as warning_checks_failed
            from failed_checks where severity = 'warning' group by all
        )
        select v.site_id, v.period, v.cases, round(v.completeness, 6) as completeness,
               coalesce(b.blocking_findings, 0) as blocking_findings,
               coalesce(b.blocking_checks_failed, 0) as blocking_checks_failed,
               coalesce(w.warning_findings, 0) as warning_findings,
               coalesce(w.warning_checks_failed, 0) as warning_checks_failed,
               case when coalesce(b.blocking_checks_failed, 0) > 0 then 'red'
                    when coalesce(w.warning_checks_failed, 0) > 0
                         or v.completeness < {registry.policy.completeness_threshold} then 'yellow'
                    else 'green' end as status
        from volume v
        left join blocking b using (site_id, period)
        left join warnings w using (site_id, period)
        order by site_id, period
    """, [list(thresholds), list(thresholds.values())])
