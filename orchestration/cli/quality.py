"""Commands for data queries: ``queries`` (an abstractor's list) and ``override`` (the CC confirms a value).

Neither opens the warehouse: ``queries`` reads the worklist files the quality
asset writes, and ``override`` leaves a request file the next quality run
applies (see orchestration/quality/overrides.py), so neither ever waits for,
or blocks, a running pipeline.
"""

from __future__ import annotations

import typer

from ..settings import paths
from .app import ExitCode, app, fail, known_site

TABLE_COLUMNS = [("query_id", 18), ("severity", 8), ("case_id", 14), ("period", 6), ("label", 26), ("observed", 14)]


@app.command()
def queries(site: str = typer.Option(..., "--site", help="Site code, for example S01."),
            format: str = typer.Option("table", "--format", help="table (readable) or csv (for a spreadsheet)."),
            ) -> None:
    """Print a site's open data queries, most severe first, grouped by case."""
    from ..quality.worklists import read_worklist

    if format not in ("table", "csv"):
        fail(f"unknown format {format!r}; use table or csv", ExitCode.USAGE)
    known_site(site)
    folder = paths().worklists
    frame = read_worklist(folder, site)
    if frame is None:
        fail(f"no worklist for {site} yet: the quality checks have not run since it was set up "
             f"(expected {folder / site / 'queries.csv'}); run the pipeline first (cqi run)")
    if format == "csv":
        typer.echo((folder / site / "queries.csv").read_text(encoding="utf-8"), nl=False)
        return
    if frame.empty:
        typer.echo(f"{site} has no open data queries")
        return
    typer.echo(f"{len(frame)} open queries for {site} "
               f"({(frame['severity'] == 'blocking').sum()} blocking); also in {folder / site}/queries.html")
    typer.echo("  ".join(f"{name:<{width}}" for name, width in TABLE_COLUMNS))
    previous = None
    for row in frame.to_dict("records"):
        group = row["case_id"] or f"period {row['period']}"
        if group != previous and previous is not None:
            typer.echo("")
        previous = group
        typer.echo("  ".join(f"{str(row[name])[:width]:<{width}}" for name, width in TABLE_COLUMNS))
        typer.echo(f"    {row['message']}")


@app.command()
def override(query_id: str = typer.Argument(..., help="The query's id, for example Q-0123456789ABCDEF."),
             reason: str = typer.Option(..., "--reason", help="Why the value is correct (kept with the override)."),
             author: str = typer.Option(..., "--author", help="Who at the coordinating centre confirms it."),
             ) -> None:
    """Confirm a queried value as correct; applied on the next quality run, for this value only."""
    import pandas as pd

    from ..quality.overrides import QUERY_ID_PATTERN, new_request, overrides_folder, write_request

    query_id = query_id.strip().upper()
    if not QUERY_ID_PATTERN.match(query_id):
        fail(f"{query_id!r} is not a query id (they look like Q-0123456789ABCDEF; "
             "cqi queries --site S lists a site's)", ExitCode.USAGE)
    if not reason.strip() or not author.strip():
        fail("an override needs a non-empty --reason and --author", ExitCode.USAGE)
    folders = paths()
    worklists = sorted(folders.worklists.glob("*/queries.csv"))
    if not worklists:
        fail(f"no worklists yet under {folders.worklists}: run the pipeline first (cqi run)")
    match = None
    for path in worklists:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        hit = frame[frame["query_id"] == query_id]
        if len(hit):
            match = (path.parent.name, hit.iloc[0])
            break
    if match is None:
        fail(f"{query_id} is not an open query in any site's worklist ({folders.worklists}): it may have been "
             "resolved or overridden already; cqi queries --site S lists a site's open queries", ExitCode.USAGE)
    site_id, row = match
    observed = row["observed"]
    if observed.startswith("'") and observed[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        observed = observed[1:]   # undo the worklist's formula neutralisation
    request = write_request(overrides_folder(folders.data_dir),
                            new_request(query_id, observed, reason, author, site_id))
    typer.echo(f"override of {query_id} ({site_id}, case {row['case_id'] or row['period']}, {row['label']} = "
               f"'{observed}') requested: {request}\nit takes effect on the next quality run (cqi run)")
