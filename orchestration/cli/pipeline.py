"""Commands that run the pipeline: ``demo``, ``run``, ``synth``, ``validate``, ``dev``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from ..settings import PROJECT_ROOT, paths, registry_dir
from .app import DEMO_SEED, app, export_paths, fail


@app.command()
def validate() -> None:
    """Check the registry definition and report what it defines."""
    from ..registry import RegistryError, load_registry

    try:
        registry = load_registry(registry_dir())
    except RegistryError as exc:
        fail(str(exc), 2)
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
    from ..registry import load_registry
    from ..synth import generate_collaborative

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


def run_and_report() -> bool:
    from ..cycle import RunInProgress, run_cycle

    try:
        outcome = run_cycle()
    except RunInProgress as exc:
        fail(str(exc), 4)
    if outcome.success:
        typer.secho(f"run {outcome.run_id} succeeded", fg=typer.colors.GREEN)
    else:
        typer.secho(f"run {outcome.run_id} did not complete: failed steps {outcome.failed_steps}, "
                    f"failed checks {outcome.failed_checks}", fg=typer.colors.RED, err=True)
    return outcome.success


@app.command()
def run() -> None:
    """Run the whole cycle once on what is in the landing zone."""
    export_paths()
    if not run_and_report():
        raise typer.Exit(1)


@app.command()
def demo(cases: int = typer.Option(6000, help="Cases in the demo collaborative."),
         seed: int = typer.Option(DEMO_SEED, help="Random seed of the demo collaborative.")) -> None:
    """Generate the demo collaborative, submit it, and run the whole pipeline through Dagster."""
    from ..registry import load_registry
    from ..synth import generate_collaborative

    export_paths()
    folders = paths().ensure()
    source = folders.data_dir / "demo_collaborative"
    typer.echo(f"1/4 generating the demo collaborative ({cases} cases, seed {seed}) in {source}")
    generate_collaborative(load_registry(registry_dir()), source, cases=cases, seed=seed)
    typer.echo(f"2/4 first round: {_submit_folder(source / 'landing', folders.landing)} files submitted")
    first = run_and_report()
    resubmissions = source / "resubmissions"
    count = _submit_folder(resubmissions, folders.landing) if resubmissions.is_dir() else 0
    typer.echo(f"3/4 second round: {count} corrected resubmissions")
    second = run_and_report()
    typer.echo("4/4 outputs")
    typer.echo(f"  warehouse (DuckDB):          {folders.warehouse}")
    typer.echo(f"  receipts:                    {folders.receipts}")
    typer.echo(f"  abstractor query lists:      {folders.worklists}")
    typer.echo(f"  per-site feedback:           {folders.publish}")
    typer.echo(f"  Dagster home (run history):  {folders.dagster_home}")
    typer.echo("  open the Dagster UI with:    make dev   (then http://127.0.0.1:3000)")
    if not (first and second):
        raise typer.Exit(1)


@app.command()
def dev(port: int = typer.Option(3000, help="Port of the Dagster UI.")) -> None:
    """Start the Dagster UI and daemon on this project (sensors and schedules run)."""
    from ..instance import prepare_dagster_home

    export_paths()
    prepare_dagster_home()
    executable = Path(sys.executable).parent / "dagster"
    raise typer.Exit(subprocess.call([str(executable), "dev", "-m", "orchestration.definitions",
                                      "-p", str(port)], cwd=PROJECT_ROOT))
