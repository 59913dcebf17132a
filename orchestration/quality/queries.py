"""Data queries: one per problem on a case and field, with a stable id and a message.

The id is a hash of site, case, field and rule id (not the rule's version,
not the value, not the submission), so the same problem on the same case and
field keeps its id across runs and resubmissions: that is what lets a query
be resolved, overridden and reopened. Site-period checks have no case; their
id takes the period in its place.

The message is what the abstractor reads: the case, the field's label, the
problem in plain words with the observed value, and the dictionary's
definition quoted, so the abstractor need not look anything up.
"""

from __future__ import annotations

import hashlib

QUERY_ID_PREFIX = "Q-"
QUERY_ID_HEX = 16
OPEN_STATES = ("open", "reopened")

QUALITY_DDL = """
create schema if not exists quality;
create table if not exists quality.queries (
    query_id varchar primary key,
    site_id varchar not null,
    period varchar,
    case_id varchar,                -- null for a site-period check
    field varchar not null,
    label varchar,
    rule_id varchar not null,
    rule_version integer not null,
    category varchar not null,
    severity varchar not null,      -- blocking | warning
    level varchar not null,         -- row | site_period
    observed varchar,
    expected varchar,
    message varchar not null,
    status varchar not null,        -- open | resolved | overridden | reopened
    opened_at timestamp not null,
    status_changed_at timestamp not null,
    last_seen_at timestamp,
    times_reopened integer not null default 0,
    override_reason varchar,
    override_author varchar
);
create table if not exists quality.query_events (
    query_id varchar not null,
    event varchar not null,         -- opened | resolved | overridden | reopened
    from_status varchar,
    to_status varchar not null,
    event_at timestamp not null,
    observed varchar,
    note varchar,
    author varchar
);
create table if not exists quality.overrides (
    query_id varchar not null,
    observed varchar not null,      -- the override covers this value only
    reason varchar not null,
    author varchar not null,
    overridden_at timestamp not null,
    request varchar,                -- the request file it came from
    primary key (query_id, observed)
);
"""


def query_key(site_id: str, case_id: str | None, field: str, rule_id: str, period: str | None = None) -> str:
    subject = case_id if case_id is not None else f"period:{period}"
    return f"{site_id}|{subject}|{field}|{rule_id}"


def query_id(site_id: str, case_id: str | None, field: str, rule_id: str, period: str | None = None) -> str:
    """The stable id of the query on this problem (same formula as ``QUERY_ID_SQL``)."""
    digest = hashlib.sha256(query_key(site_id, case_id, field, rule_id, period).encode("utf-8")).hexdigest()
    return QUERY_ID_PREFIX + digest[:QUERY_ID_HEX].upper()


QUERY_ID_SQL = (f"'{QUERY_ID_PREFIX}' || upper(left(sha256(site_id || '|' || coalesce(case_id, 'period:' || period) "
                f"|| '|' || field || '|' || rule_id), {QUERY_ID_HEX}))")

MESSAGE_SQL = ("coalesce('Case ' || case_id, 'Period ' || period) || ', ' || label || ': ' "
               "|| replace(problem, '{value}', coalesce(observed, '')) || '. Definition: \"' || definition || '\"'")


def ensure_query_tables(con) -> None:
    con.execute(QUALITY_DDL)
