"""Commands for analysts: ``sql`` over the read-only analyst copy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from ..settings import paths
from .app import ExitCode, app, fail

READ_ONLY = re.compile(r"^\s*(select|with|from|describe|show|summarize|pragma\s+table_info|explain)\b", re.I)


@app.command()
def sql(query: str = typer.Argument(..., help="A read-only SQL query, e.g. \"select * from marts.mart_site_results\"."),
        out: Optional[Path] = typer.Option(None, help="Write the result to a .csv or .parquet file instead."),
        ) -> None:
    """Run a read-only query against the latest analyst copy of the marts."""
    import duckdb

    if not READ_ONLY.match(query) or ";" in query.strip().rstrip(";"):
        fail("cqi sql runs one read-only query (select, with, describe, show, summarize); "
             "the analyst copy cannot be changed", ExitCode.USAGE)
    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        fail(f"--out {out}: write a .csv or a .parquet file", ExitCode.USAGE)
    database = paths().analyst / "latest" / "analyst.duckdb"
    if not database.exists():
        fail(f"no analyst copy yet at {database}: it is written after each publication; "
             "run the pipeline first (cqi demo, or cqi run then cqi publish)")
    with duckdb.connect(str(database), read_only=True) as con:
        try:
            relation = con.sql(query)
        except duckdb.Error as exc:
            fail(f"the query failed: {str(exc).splitlines()[0]}\n"
                 "the tables are listed by: cqi sql \"select table_schema, table_name from information_schema.tables\"",
                 ExitCode.USAGE)
        if out is None:
            typer.echo(relation.df().to_string(index=False, max_rows=200))
        elif out.suffix.lower() == ".parquet":
            relation.write_parquet(str(out))
        else:
            relation.write_csv(str(out))
