"""Commands for publication: ``publish``."""

from __future__ import annotations

from typing import Optional

import typer

from ..settings import paths
from . import progress
from .app import ExitCode, app, export_paths, fail, known_period, load_registry_or_fail, refuse_if_busy


@app.command()
def publish(period: Optional[str] = typer.Option(None, help="Period to publish, for example 2025Q4 "
                                                            "(default: the latest with included data)."),
            verify: bool = typer.Option(False, help="Do not publish: rebuild the period's current release from "
                                                    "its saved inputs and compare with its manifest."),
            ) -> None:
    """Publish feedback for a period (quality gate, marts, packages), or verify a past release."""
    from ..publish.release import current_release

    export_paths()
    folders = paths()
    if period is not None:
        period = period.strip().upper()
        known_period(period)
    if verify:
        from ..publish.reproduce import verify as verify_release

        if not period:
            fail("--verify needs --period, for example: cqi publish --period 2025Q4 --verify", ExitCode.USAGE)
        release_dir = current_release(folders.publish, period)
        if release_dir is None:
            fail(f"{period} has not been published yet (no release under {folders.publish}); "
                 f"publish it first: cqi publish --period {period}")
        with progress.task(f"rebuilding the {period} release from its inputs"):
            problems = verify_release(release_dir, load_registry_or_fail())
        if problems:
            fail(f"{release_dir} does not reproduce:\n  " + "\n  ".join(problems[:20]))
        typer.secho(f"{release_dir} reproduces byte for byte from its manifest's inputs", fg=typer.colors.GREEN)
        return
    refuse_if_busy()
    from ..cycle import RunInProgress, run_publication

    try:
        with progress.pipeline_run(f"publishing {period or 'the latest period'}"):
            outcome = run_publication(period)
    except RunInProgress as exc:
        fail(str(exc), ExitCode.BUSY)
    if not outcome.success:
        fail(f"run {outcome.run_id}: nothing was published (failed steps {outcome.failed_steps}, "
             f"failed checks {outcome.failed_checks}); the previous publication is untouched. "
             "The run's log and the failed checks are in the Dagster UI (cqi dev, Runs)")
    release_dir = current_release(folders.publish, period) if period else (folders.publish / "latest").resolve()
    typer.secho(f"run {outcome.run_id} published {release_dir}", fg=typer.colors.GREEN)
