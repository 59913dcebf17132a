"""Commands that run the pipeline: ``demo``, ``run``, ``synth``, ``validate``, ``dev``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from ..settings import PROJECT_ROOT, paths
from . import progress
from .app import DEMO_SEED, ExitCode, app, export_paths, fail, load_registry_or_fail, refuse_if_busy


@app.command()
def validate() -> None:
    """Check the registry definition and report what it defines."""
    registry = load_registry_or_fail()
    typer.echo(f"{registry.id} {registry.version}: {len(registry.variables)} variables, "
               f"{len(registry.measures)} measures, {len(registry.sites)} sites, "
               f"periods {registry.periods[0].period}..{registry.periods[-1].period}")


@app.command()
def synth(out: Path = typer.Option(..., help="Folder to write the collaborative into."),
          cases: int = typer.Option(6000, min=1, help="Total cases over all sites and periods."),
          sites: Optional[int] = typer.Option(None, min=1, help="Number of sites (default: the registry roster)."),
          periods: Optional[int] = typer.Option(None, min=1, help="Number of quarters (default: the calendar)."),
          seed: int = typer.Option(DEMO_SEED, help="Random seed; the same seed writes the same bytes."),
          defects: bool = typer.Option(True, help="Inject row and file defects (recorded in truth/)."),
          ) -> None:
    """Write a synthetic collaborative: site files as sites send them, and its ground truth."""
    from ..synth import generate_collaborative

    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file; give a folder to write the collaborative into", ExitCode.USAGE)
    registry = load_registry_or_fail()
    with progress.task(f"generating {cases} synthetic cases"):
        try:
            result = generate_collaborative(registry, out, cases=cases, sites=sites, periods=periods, seed=seed,
                                            defects=defects)
        except ValueError as exc:
            fail(f"cannot generate that collaborative: {exc}", ExitCode.USAGE)
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


def run_and_report(label: str = "pipeline run", busy_hint: str = "") -> bool:
    """Run the cycle once and say how it went; exits 4 when another run holds the warehouse."""
    refuse_if_busy(busy_hint)
    from ..cycle import RunInProgress, run_cycle

    try:
        with progress.pipeline_run(label):
            outcome = run_cycle()
    except RunInProgress as exc:
        fail(f"{exc}{busy_hint}", ExitCode.BUSY)
    if outcome.success:
        typer.secho(f"run {outcome.run_id} succeeded", fg=typer.colors.GREEN)
    else:
        typer.secho(f"run {outcome.run_id} did not complete: failed steps {outcome.failed_steps}, "
                    f"failed checks {outcome.failed_checks}; nothing new was published. The run's log is in "
                    "the Dagster UI (cqi dev, Runs); fix the cause and run again", fg=typer.colors.RED, err=True)
    return outcome.success


@app.command()
def run() -> None:
    """Run the whole cycle once on what is in the landing zone."""
    export_paths()
    folders = paths()
    waiting = folders.landing.is_dir() and any(p.is_file() for p in folders.landing.rglob("*"))
    if not waiting and not folders.warehouse.exists():
        fail(f"nothing to do: no files wait in {folders.landing} and there is no warehouse yet; "
             "sites submit with cqi submit FILE --site S (or try cqi demo)")
    if not run_and_report():
        raise typer.Exit(ExitCode.FAILED)


@app.command()
def demo(cases: int = typer.Option(6000, min=1, help="Cases in the demo collaborative."),
         seed: int = typer.Option(DEMO_SEED, help="Random seed of the demo collaborative.")) -> None:
    """Generate the demo collaborative, submit it, and run the whole pipeline through Dagster."""
    from ..synth import generate_collaborative

    registry = load_registry_or_fail()
    export_paths()
    folders = paths().ensure()
    source = folders.data_dir / "demo_collaborative"
    with progress.task("demo", total=3) as stages:
        typer.echo(f"1/4 generating the demo collaborative ({cases} cases, seed {seed}) in {source}")
        generate_collaborative(registry, source, cases=cases, seed=seed)
        stages.advance("demo: first round")
        typer.echo(f"2/4 first round: {_submit_folder(source / 'landing', folders.landing)} files submitted")
        first = run_and_report("first round")
        stages.advance("demo: second round")
        resubmissions = source / "resubmissions"
        count = _submit_folder(resubmissions, folders.landing) if resubmissions.is_dir() else 0
        typer.echo(f"3/4 second round: {count} corrected resubmissions")
        second = run_and_report("second round")
        stages.advance("demo: done")
    typer.echo("4/4 outputs")
    typer.echo(f"  warehouse (DuckDB):          {folders.warehouse}")
    typer.echo(f"  receipts:                    {folders.receipts}")
    typer.echo(f"  abstractor query lists:      {folders.worklists}")
    typer.echo(f"  per-site feedback:           {folders.publish}")
    typer.echo(f"  Dagster home (run history):  {folders.dagster_home}")
    typer.echo("  open the Dagster UI with:    make dev   (then http://127.0.0.1:3000)")
    typer.echo("  dbt documentation:           cqi docs")
    if not (first and second):
        raise typer.Exit(ExitCode.FAILED)


@app.command()
def dev(port: int = typer.Option(3000, help="Port of the Dagster UI.")) -> None:
    """Start the Dagster UI and daemon on this project (sensors and schedules run)."""
    from ..instance import prepare_dagster_home

    export_paths()
    prepare_dagster_home()
    executable = Path(sys.executable).parent / "dagster"
    raise typer.Exit(subprocess.call([str(executable), "dev", "-m", "orchestration.definitions",
                                      "-p", str(port)], cwd=PROJECT_ROOT))
