"""Tables written by the Python stages (intake, quality, registry).

dbt reads them as sources. The case table's columns come from the data
dictionary: a variable is defined once, in the registry.
"""

from __future__ import annotations

import duckdb

from ..registry import Registry

LINEAGE_COLUMNS = {
    "submission_id": "VARCHAR NOT NULL",
    "file_checksum": "VARCHAR NOT NULL",
    "row_number": "BIGINT NOT NULL",
    "period": "VARCHAR",
}

LEDGER_DDL = """
create schema if not exists intake;
create schema if not exists raw;
create schema if not exists quality;
create schema if not exists registry;
-- One row per distinct file content a site sent (same bytes, same submission).
create table if not exists intake.submissions (
    submission_id varchar primary key,
    sequence bigint not null,          -- order of receipt: a later sequence supersedes

    site_id varchar not null,
    original_name varchar not null,
    file_checksum varchar not null,
    size_bytes bigint not null,
    received_at timestamp not null,
    status varchar not null,            -- accepted | accepted_with_findings | rejected
    reason varchar,
    rows_received bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    periods varchar[],
    receipt_path varchar
);
-- Every arrival of a file, duplicates included.
create table if not exists intake.receptions (
    submission_id varchar not null,
    original_name varchar not null,
    received_at timestamp not null,
    outcome varchar not null            -- processed | duplicate
);
create table if not exists intake.cell_findings (
    submission_id varchar not null,
    row_number bigint not null,
    field varchar not null,
    value varchar,
    problem varchar not null
);
"""

# The current version of each site-period: the latest accepted submission
# whose rows fall in it (a resubmission replaces whole periods).
CURRENT_VIEW = """
create or replace view intake.current_submission_periods as
select site_id, period, submission_id, sequence from (
    select s.site_id, p.period, s.submission_id, s.sequence,
           row_number() over (partition by s.site_id, p.period order by s.sequence desc) as recency
    from intake.submissions s, unnest(s.periods) as p(period)
    where s.status in ('accepted', 'accepted_with_findings')
) where recency = 1
"""


def case_table_ddl(registry: Registry) -> str:
    columns = [f'"{c.name}" {c.sql_type}' for c in registry.warehouse_columns]
    columns += [f'"{name}" {ddl}' for name, ddl in LINEAGE_COLUMNS.items()]
    return f"create table if not exists raw.cases ({', '.join(columns)})"


def ensure_schema(con: duckdb.DuckDBPyConnection, registry: Registry) -> None:
    con.execute(LEDGER_DDL)
    con.execute(case_table_ddl(registry))
    con.execute(CURRENT_VIEW)
