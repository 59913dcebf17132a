"""The ``cqi`` command line: what the coordinating centre, abstractors and analysts do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from .settings import PROJECT_ROOT, paths, registry_dir

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="cqi-warehouse: registry intake, data quality, risk-adjusted marts and feedback.")

DEMO_SEED = 20251


def _export_paths() -> None:
    """Child processes (dbt) must see the same data folder as this one."""
    os.environ["CQI_DATA_DIR"] = str(paths().data_dir)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def validate() -> None:
    """Check the registry definition and report what it defines."""
    from .registry import RegistryError, load_registry

    try:
        registry = load_registry(registry_dir())
    except RegistryError as exc:
        _fail(str(exc), 2)
    typer.echo(f"{registry.id} {registry.version}: {len(registry.variables)} variables, "
               f"{len(registry.measures)} measures, {len(registry.sites)} sites, "
               f"periods {registry.periods[0].period}..{registry.periods[-1].period}")


@app.command()
def synth(out: Path = typer.Option(..., help="Folder to write the collaborative into."),
          cases: int = typer.Option(6000, help="Total cases over all sites and periods."),
          sites: Optional[int] = typer.Option(None, help="Number of sites (default: the registry roster)."),
          periods: Optional[int] = typer.Option(None, help="Number of quarters (default: the calendar)."),
          seed: int = typer.Option(DEMO_SEED, help="Random seed; the same seed writes the same bytes."),
          defects: bool = typer.Option(True, help="Inject row and file defects (recorded in truth/)."),
          ) -> None:
    """Write a synthetic collaborative: site files as sites send them, and its ground truth."""
    from .registry import load_registry
    from .synth import generate_collaborative

    result = generate_collaborative(load_registry(registry_dir()), out, cases=cases, sites=sites,
                                    periods=periods, seed=seed, defects=defects)
    typer.echo(f"wrote the synthetic collaborative to {result.out_dir}")


def _submit_folder(source: Path, landing: Path) -> int:
    """Copy every site file from ``source/<site>/`` into the landing zone, oldest name first."""
    count = 0
    for site_folder in sorted(p for p in source.iterdir() if p.is_dir()):
        target = landing / site_folder.name
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(site_folder.iterdir()):
            partial = target / (path.name + ".partial")
            shutil.copyfile(path, partial)
            partial.rename(target / path.name)
            count += 1
    return count


def _run_and_report() -> bool:
    from .cycle import run_cycle

    outcome = run_cycle()
    if outcome.success:
        typer.secho(f"run {outcome.run_id} succeeded", fg=typer.colors.GREEN)
    else:
        typer.secho(f"run {outcome.run_id} did not complete: failed steps {outcome.failed_steps}, "
                    f"failed checks {outcome.failed_checks}", fg=typer.colors.RED, err=True)
    return outcome.success


@app.command()
def run() -> None:
    """Run the whole cycle once on what is in the landing zone."""
    _export_paths()
    if not _run_and_report():
        raise typer.Exit(1)


@app.command()
def demo(cases: int = typer.Option(6000, help="Cases in the demo collaborative."),
         seed: int = typer.Option(DEMO_SEED, help="Random seed of the demo collaborative.")) -> None:
    """Generate the demo collaborative, submit it, and run the whole pipeline through Dagster."""
    from .registry import load_registry
    from .synth import generate_collaborative

    _export_paths()
    folders = paths().ensure()
    source = folders.data_dir / "demo_collaborative"
    typer.echo(f"1/4 generating the demo collaborative ({cases} cases, seed {seed}) in {source}")
    generate_collaborative(load_registry(registry_dir()), source, cases=cases, seed=seed)
    typer.echo(f"2/4 first round: {_submit_folder(source / 'landing', folders.landing)} files submitted")
    first = _run_and_report()
    resubmissions = source / "resubmissions"
    count = _submit_folder(resubmissions, folders.landing) if resubmissions.is_dir() else 0
    typer.echo(f"3/4 second round: {count} corrected resubmissions")
    second = _run_and_report()
    typer.echo("4/4 outputs")
    typer.echo(f"  warehouse (DuckDB):          {folders.warehouse}")
    typer.echo(f"  receipts:                    {folders.receipts}")
    typer.echo(f"  abstractor query lists:      {folders.worklists}")
    typer.echo(f"  per-site feedback:           {folders.publish}")
    typer.echo(f"  Dagster home (run history):  {folders.dagster_home}")
    typer.echo("  open the Dagster UI with:    make dev   (then http://127.0.0.1:3000)")
    if not (first and second):
        raise typer.Exit(1)


def _known_site(site: str) -> None:
    from .registry import load_registry

    sites = load_registry(registry_dir()).site_ids()
    if site not in sites:
        _fail(f"unknown site {site!r}; the roster has {', '.join(sites[:12])}{' ...' if len(sites) > 12 else ''}", 2)


@app.command()
def status(site: str = typer.Option(..., "--site", help="Site code, for example S01.")) -> None:
    """Show a site's submissions and their states, oldest first."""
    from .intake.status import site_receipts

    _known_site(site)
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
    from .intake.archive import sha256_of
    from .intake.status import receipt_for

    _known_site(site)
    _export_paths()
    folders = paths().ensure()
    target = folders.landing / site / file.name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(file, partial)
    partial.replace(target)
    typer.echo(f"submitted {file.name} to {target.parent}")
    if not run:
        return
    ran = _run_and_report()
    receipt = receipt_for(folders.receipts, site, sha256_of(file))
    if receipt is None:
        _fail("no receipt was written for the file; see the run's log in the Dagster UI")
    stem = receipt["submission_id"] + (".duplicate" if receipt["status"] == "duplicate" else "")
    typer.echo((folders.receipts / site / f"{stem}.txt").read_text(encoding="utf-8"))
    if receipt["status"] == "rejected":
        raise typer.Exit(3)
    if not ran:
        raise typer.Exit(1)


@app.command()
def dev(port: int = typer.Option(3000, help="Port of the Dagster UI.")) -> None:
    """Start the Dagster UI and daemon on this project (sensors and schedules run)."""
    from .instance import prepare_dagster_home

    _export_paths()
    prepare_dagster_home()
    executable = Path(sys.executable).parent / "dagster"
    raise typer.Exit(subprocess.call([str(executable), "dev", "-m", "orchestration.definitions",
                                      "-p", str(port)], cwd=PROJECT_ROOT))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
