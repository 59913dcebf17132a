"""Commands for sites' submissions: ``submit`` and ``status``."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from ..settings import paths
from .app import ExitCode, app, export_paths, fail, known_site
from .pipeline import run_and_report


@app.command()
def status(site: str = typer.Option(..., "--site", help="Site code, for example S01.")) -> None:
    """Show a site's submissions and their states, oldest first."""
    from ..intake.status import site_receipts

    known_site(site)
    receipts = site_receipts(paths().receipts, site)
    if not receipts:
        typer.echo(f"no submissions received from {site} yet")
        return
    typer.echo(f"{'received (UTC)':<27} {'file':<32} {'status':<24} {'loaded':>7} {'rejected':>8}  submission")
    for r in receipts:
        typer.echo(f"{r['received_at'][:26]:<27} {r['original_name'][:32]:<32} {r['status']:<24} "
                   f"{r['rows_loaded']:>7} {r['rows_rejected']:>8}  {r['submission_id']}")
        if r.get("reason"):
            typer.echo(f"{'':<27} reason: {r['reason']}")


@app.command()
def submit(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                       help="The file to submit (CSV, XLSX or Parquet)."),
           site: str = typer.Option(..., "--site", help="The submitting site's code."),
           run: bool = typer.Option(True, help="Process it now and show the receipt (--no-run only drops it).")
           ) -> None:
    """Copy a file into a site's landing folder and show its receipt."""
    from ..intake.archive import sha256_of
    from ..intake.status import receipt_for

    known_site(site)
    export_paths()
    folders = paths().ensure()
    target = folders.landing / site / file.name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(file, partial)
    partial.replace(target)
    typer.echo(f"submitted {file.name} to {target.parent}")
    if not run:
        return
    ran = run_and_report(busy_hint=f"; {file.name} waits in {target.parent} and the next run receives it")
    receipt = receipt_for(folders.receipts, site, sha256_of(file))
    if receipt is None:
        fail(f"no receipt was written for {file.name}; see the run's log in the Dagster UI (cqi dev, Runs)")
    stem = receipt["submission_id"] + (".duplicate" if receipt["status"] == "duplicate" else "")
    typer.echo((folders.receipts / site / f"{stem}.txt").read_text(encoding="utf-8"))
    if receipt["status"] == "rejected":
        raise typer.Exit(ExitCode.REJECTED)
    if not ran:
        raise typer.Exit(ExitCode.FAILED)
