"""Site-period checks: judgements on a site's period as a whole, not on a row.

- ``completeness.missingness.<field>``: the share of the site-period's cases
  with no value, for required fields and risk factors. It fails above
  ``policy.missingness_threshold`` *and* above the collaborative's own
  missingness plus that threshold, because some risk factors are legitimately
  blank (a lab not drawn: albumin is missing in about half of all cases);
  for required fields the collaborative's share is near zero, so the rule is
  the plain threshold. A small site-period must also be beyond the 99.8%
  binomial limit, so chance alone (4 of 12 cases) does not raise it.
- ``plausibility.distribution.<field>``: the site-period's mean of a number
  (in-range values only, so a single wild value is a range query, not this)
  is far from the collaborative's: a standardised difference above
  ``DISTRIBUTION_THRESHOLD`` and a z-score beyond 3.09 (the 99.8% funnel
  limit), with at least ``MIN_VALUES`` values. It catches unit mistakes
  (pounds for kilograms) and systematic mis-abstraction.
- ``timeliness.submission_deadline``: the first accepted submission covering
  the period arrived after the period's deadline (end + the calendar's
  ``submission_deadline_days``). Corrections sent later do not make a period
  late. Lateness is reported (finding, query, scorecard ``days_late``) but
  changes the grade only when the registry's ``rules.yaml`` says
  ``enforce_timeliness: true``: the grade says whether the data can be
  trusted, and the demo's synthetic files all arrive long after their 2025
  deadlines, which would otherwise turn every demo site-period yellow.

All are warnings: they ask the abstractor to look, they never exclude data.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry
from ..registry.calendar import period_bounds
from .rules import registry_rules_document

VERSION = 1
DISTRIBUTION_THRESHOLD = 0.5    # standardised mean difference
DISTRIBUTION_Z = 3.090232
MIN_VALUES = 10


@dataclass(frozen=True)
class SiteCheck:
    check_id: str
    version: int
    category: str
    severity: str
    field: str
    column: str
    threshold: float
    expected: str
    definition: str
    label: str


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def enforce_timeliness(registry: Registry) -> bool:
    return bool(registry_rules_document(registry).get("enforce_timeliness", False))


def site_checks_for(registry: Registry) -> list[SiteCheck]:
    """The catalogue of site-period checks of the registry."""
    policy = registry.policy
    checks = []
    for v in registry.variables:
        if v.required or v.role == "risk_factor":
            checks.append(SiteCheck(f"completeness.missingness.{v.name}", VERSION, "completeness", "warning",
                                    v.name, v.warehouse_name, policy.missingness_threshold,
                                    f"at most {policy.missingness_threshold:.0%} of cases without a value "
                                    f"(and no more than {policy.missingness_threshold:.0%} above the collaborative)",
                                    v.definition, v.label))
        numeric = v.type in ("integer", "number") and v.role == "risk_factor"
        if numeric or (v.pseudonymise and v.pseudonymise.method == "age_at"):
            label = v.pseudonymise.label if v.pseudonymise and v.pseudonymise.label else v.label
            checks.append(SiteCheck(f"plausibility.distribution.{v.name}", VERSION, "plausibility", "warning",
                                    v.name, v.warehouse_name, DISTRIBUTION_THRESHOLD,
                                    f"a mean within {DISTRIBUTION_THRESHOLD} standard deviations of the "
                                    f"collaborative's", v.definition, label))
    checks.append(SiteCheck("timeliness.submission_deadline", VERSION, "timeliness", "warning", "site_id",
                            "site_id", 0.0, f"received within {registry.calendar.submission_deadline_days} days "
                            "of the period's end",
                            f"Each period's cases are due within {registry.calendar.submission_deadline_days} days "
                            "of the period's end (the registry calendar's submission deadline).", "Submission"))
    return checks


def _range_sql(registry: Registry, field: str, column: str) -> str:
    variable = registry.variable(field)
    low, high = variable.min, variable.max
    if variable.pseudonymise and variable.pseudonymise.method == "age_at":
        low, high = variable.pseudonymise.min, variable.pseudonymise.max
    parts = [f'"{column}" is not null']
    if low is not None:
        parts.append(f'"{column}" >= {low}')
    if high is not None:
        parts.append(f'"{column}" <= {high}')
    return " and ".join(parts)


FINDING_COLUMNS = ("site_id, period, case_id, submission_id, row_number, field, rule_id, rule_version, category, "
                   "severity, observed, expected, definition, label, problem, level, affects_grade")


def site_findings_sql(registry: Registry, checks: list[SiteCheck]) -> list[str]:
    """Statements that insert the failing site-periods into ``quality.findings``.

    They read the temp view ``current_rows`` and the temp table ``site_period_submissions``."""
    statements = []
    missing = [c for c in checks if c.check_id.startswith("completeness.missingness.")]
    if missing:
        aggregates = ", ".join(f'count(*) - count("{c.column}") as "m_{c.field}"' for c in missing)
        statements.append(f"create or replace temp table missing_profile as select site_id, period, count(*) as n, "
                          f"{aggregates} from current_rows group by all")
        for c in missing:
            statements.append(f"""
                insert into quality.findings ({FINDING_COLUMNS})
                with shares as (
                    select site_id, period, n, "m_{c.field}" / n as share,
                           sum("m_{c.field}") over () / sum(n) over () as overall
                    from missing_profile
                )
                select s.site_id, s.period, null, p.submission_id, null, {_q(c.field)}, {_q(c.check_id)}, {c.version},
                       {_q(c.category)}, {_q(c.severity)}, format('{{:.1f}}%', 100 * share), {_q(c.expected)},
                       {_q(c.definition)}, {_q(c.label)},
                       format('{{:.1f}}% of the period''s cases have no value (collaborative: {{:.1f}}%)',
                              100 * share, 100 * overall),
                       'site_period', true
                from shares s join site_period_submissions p using (site_id, period)
                where n >= {MIN_VALUES} and share > {c.threshold} and share > overall + {c.threshold}
                  and (share - overall) / sqrt(greatest(overall * (1 - overall), 1e-9) / n) > {DISTRIBUTION_Z}""")
    for c in checks:
        if not c.check_id.startswith("plausibility.distribution."):
            continue
        valid = _range_sql(registry, c.field, c.column)
        statements.append(f"""
            insert into quality.findings ({FINDING_COLUMNS})
            with site as (
                select site_id, period, avg("{c.column}") as mean, count("{c.column}") as n
                from current_rows where {valid} group by all
            ), overall as (
                select avg("{c.column}") as mean, stddev_samp("{c.column}") as sd from current_rows where {valid}
            ), scored as (
                select site.*, overall.mean as overall_mean, (site.mean - overall.mean) / overall.sd as smd,
                       (site.mean - overall.mean) / (overall.sd / sqrt(site.n)) as z
                from site, overall where overall.sd > 0 and site.n >= {MIN_VALUES}
            )
            select s.site_id, s.period, null, p.submission_id, null, {_q(c.field)}, {_q(c.check_id)}, {c.version},
                   {_q(c.category)}, {_q(c.severity)}, format('mean {{:.4g}}', s.mean), {_q(c.expected)},
                   {_q(c.definition)}, {_q(c.label)},
                   format('the period''s mean is {{:.4g}} against the collaborative''s {{:.4g}} '
                          '({{:.2f}} standard deviations away): check units and abstraction', s.mean,
                          s.overall_mean, s.smd),
                   'site_period', true
            from scored s join site_period_submissions p using (site_id, period)
            where abs(s.smd) > {c.threshold} and abs(s.z) > {DISTRIBUTION_Z}""")
    timely = next((c for c in checks if c.category == "timeliness"), None)
    if timely is not None:
        statements.append(f"""
            insert into quality.findings ({FINDING_COLUMNS})
            select site_id, period, null, submission_id, null, {_q(timely.field)}, {_q(timely.check_id)},
                   {timely.version}, {_q(timely.category)}, {_q(timely.severity)},
                   strftime(first_received_at, '%Y-%m-%d'), 'by ' || strftime(deadline, '%Y-%m-%d'),
                   {_q(timely.definition)}, {_q(timely.label)},
                   format('the period''s first submission arrived on {{}}, {{}} days after the deadline of {{}}',
                          strftime(first_received_at, '%Y-%m-%d'), days_late, strftime(deadline, '%Y-%m-%d')),
                   'site_period', {str(enforce_timeliness(registry)).lower()}
            from site_period_submissions where days_late > {timely.threshold}""")
    return statements


def deadlines(registry: Registry, period_names: list[str]) -> dict[str, str]:
    """Submission deadline (ISO date) of each period, inside the calendar or beyond it."""
    from datetime import timedelta

    days = registry.calendar.submission_deadline_days
    return {p: (period_bounds(p)[1] + timedelta(days=days)).isoformat() for p in period_names}


SITE_PERIOD_SUBMISSIONS = """
create or replace temp table site_period_submissions as
with firsts as (
    select s.site_id, p.period, min(s.received_at) as first_received_at
    from intake.submissions s, unnest(s.periods) as p(period)
    where s.status in ('accepted', 'accepted_with_findings')
    group by all
)
select c.site_id, c.period, c.submission_id, cur.received_at as current_received_at, f.first_received_at,
       cast(d.deadline as date) as deadline,
       date_diff('day', cast(d.deadline as date), cast(f.first_received_at as date)) as days_late
from intake.current_submission_periods c
join intake.submissions cur using (submission_id)
join firsts f on f.site_id = c.site_id and f.period = c.period
left join (select unnest(?) as period, unnest(?) as deadline) d on d.period = c.period
"""


def build_site_period_submissions(con, registry: Registry) -> None:
    """Temp table: each current site-period with its submission, first arrival and deadline."""
    periods = [r[0] for r in con.execute("select distinct period from intake.current_submission_periods").fetchall()]
    due = deadlines(registry, periods)
    con.execute(SITE_PERIOD_SUBMISSIONS, [list(due), list(due.values())])
