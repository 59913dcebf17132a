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

Missingness and distribution are the only checks that read other sites'
data. They read the per-site-period profile (``profile_sql``, kept in
``quality.site_period_profile``), not the rows, so an incremental run
re-judges them for every site without reading unchanged sites again
(``docs/decisions/incremental-quality.md``).
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


def comparison_checks(checks: list[SiteCheck]) -> list[SiteCheck]:
    """The checks that judge a site-period against the collaborative (missingness, distribution)."""
    return [c for c in checks if c.check_id.startswith(("completeness.missingness.", "plausibility.distribution."))]


def profile_sql(registry: Registry, checks: list[SiteCheck], source: str = "current_rows") -> str:
    """One row per site-period of ``source``: what the grade and the comparison checks need.

    ``n`` cases and ``filled`` (required cells with a value) for completeness; ``m_<field>``
    missing values per missingness check; per distribution check the in-range values'
    count ``dn_``, mean ``dmean_`` and sum of squared deviations ``dm2_``. The collaborative's
    figures are combined from these rows, so a site that did not change is never re-read."""
    required = [v.warehouse_name for v in registry.variables if v.required]
    parts = ["count(*) as n", "(" + (" + ".join(f'count("{c}")' for c in required) or "0") + ") as filled"]
    for c in checks:
        if c.check_id.startswith("completeness.missingness."):
            parts.append(f'count(*) - count("{c.column}") as "m_{c.field}"')
        elif c.check_id.startswith("plausibility.distribution."):
            valid = _range_sql(registry, c.field, c.column)
            value = f'"{c.column}"'
            parts += [f'count(*) filter (where {valid}) as "dn_{c.field}"',
                      f'avg({value}) filter (where {valid}) as "dmean_{c.field}"',
                      f'coalesce(var_pop({value}) filter (where {valid}), 0) * count(*) filter (where {valid}) '
                      f'as "dm2_{c.field}"']
    return f"select site_id, period, {', '.join(parts)} from {source} group by site_id, period"


def collaborative_figures(con, checks: list[SiteCheck], profile: str) -> dict[str, tuple]:
    """The collaborative's share missing, or mean and standard deviation, of each comparison check's
    field, combined from the site-period profile with exact sums (the same figures whatever the
    rows' order, so an incremental run and a full run agree to the last bit)."""
    from math import fsum, sqrt

    figures = {}
    for c in comparison_checks(checks):
        if c.check_id.startswith("completeness.missingness."):
            n, missing = con.execute(f'select coalesce(sum(n), 0), coalesce(sum("m_{c.field}"), 0) '
                                     f'from {profile}').fetchone()
            figures[c.check_id] = (missing / n if n else None,)
        else:
            rows = con.execute(f'select "dn_{c.field}", "dmean_{c.field}", "dm2_{c.field}" from {profile} '
                               f'where "dn_{c.field}" > 0').fetchall()
            total = sum(r[0] for r in rows)
            if total < 2:
                figures[c.check_id] = (None, None)
                continue
            mean = fsum(r[0] * r[1] for r in rows) / total
            m2 = fsum([r[2] for r in rows] + [r[0] * (r[1] - mean) ** 2 for r in rows])
            figures[c.check_id] = (mean, sqrt(m2 / (total - 1)))
    return figures


def comparison_findings_sql(registry: Registry, checks: list[SiteCheck], figures: dict[str, tuple],
                            profile: str = "quality.site_period_profile") -> list[str]:
    """Statements that insert the site-periods failing a comparison check into ``quality.findings``
    (for every site-period of ``profile``; they read the temp table ``site_period_submissions``)."""
    statements = []
    for c in comparison_checks(checks):
        if c.check_id.startswith("completeness.missingness."):
            (overall,) = figures[c.check_id]
            if overall is None:
                continue
            statements.append(f"""
                insert into quality.findings ({FINDING_COLUMNS})
                with shares as (
                    select site_id, period, n, "m_{c.field}" / n as share, {overall!r}::double as overall
                    from {profile}
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
        else:
            mean, sd = figures[c.check_id]
            if sd is None or not sd > 0:
                continue
            statements.append(f"""
                insert into quality.findings ({FINDING_COLUMNS})
                with scored as (
                    select site_id, period, "dmean_{c.field}" as mean, {mean!r}::double as overall_mean,
                           ("dmean_{c.field}" - {mean!r}::double) / {sd!r}::double as smd,
                           ("dmean_{c.field}" - {mean!r}::double) / ({sd!r}::double / sqrt("dn_{c.field}")) as z
                    from {profile} where "dn_{c.field}" >= {MIN_VALUES}
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
    return statements


def timeliness_findings_sql(registry: Registry, checks: list[SiteCheck], where: str = "true") -> list[str]:
    """The statement that inserts late site-periods into ``quality.findings`` (a site's own dates only)."""
    timely = next((c for c in checks if c.category == "timeliness"), None)
    if timely is None:
        return []
    return [f"""
            insert into quality.findings ({FINDING_COLUMNS})
            select site_id, period, null, submission_id, null, {_q(timely.field)}, {_q(timely.check_id)},
                   {timely.version}, {_q(timely.category)}, {_q(timely.severity)},
                   strftime(first_received_at, '%Y-%m-%d'), 'by ' || strftime(deadline, '%Y-%m-%d'),
                   {_q(timely.definition)}, {_q(timely.label)},
                   format('the period''s first submission arrived on {{}}, {{}} days after the deadline of {{}}',
                          strftime(first_received_at, '%Y-%m-%d'), days_late, strftime(deadline, '%Y-%m-%d')),
                   'site_period', {str(enforce_timeliness(registry)).lower()}
            from site_period_submissions where days_late > {timely.threshold} and ({where})"""]


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
