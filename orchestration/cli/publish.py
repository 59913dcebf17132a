"""Commands for publication: ``publish``."""

from __future__ import annotations

from typing import Optional

import typer

from ..settings import paths, registry_dir
from .app import app, export_paths, fail


@app.command()
def publish(period: Optional[str] = typer.Option(None, help="Period to publish, for example 2025Q4 "
                                                            "(default: the latest with included data)."),
            verify: bool = typer.Option(False, help="Do not publish: rebuild the period's current release from "
                                                    "its saved inputs and compare with its manifest."),
            ) -> None:
    """Publish feedback for a period (quality gate, marts, packages), or verify a past release."""
    from ..publish.release import current_release
    from ..registry import load_registry

    export_paths()
    folders = paths()
    if verify:
        from ..publish.reproduce import verify as verify_release

        if not period:
            fail("--verify needs --period", 2)
        release_dir = current_release(folders.publish, period)
        if release_dir is None:
            fail(f"no release of {period} under {folders.publish}", 1)
        problems = verify_release(release_dir, load_registry(registry_dir()))
        if problems:
            fail(f"{release_dir} does not reproduce:\n  " + "\n  ".join(problems[:20]), 1)
        typer.secho(f"{release_dir} reproduces byte for byte from its manifest's inputs", fg=typer.colors.GREEN)
        return
    from ..cycle import RunInProgress, run_publication

    try:
        outcome = run_publication(period)
    except RunInProgress as exc:
        fail(str(exc), 4)
    if not outcome.success:
        fail(f"run {outcome.run_id}: nothing was published (failed steps {outcome.failed_steps}, "
             f"failed checks {outcome.failed_checks}); the previous publication is untouched", 1)
    release_dir = current_release(folders.publish, period) if period else (folders.publish / "latest").resolve()
    typer.secho(f"run {outcome.run_id} published {release_dir}", fg=typer.colors.GREEN)
