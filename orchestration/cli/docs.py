"""``cqi docs``: the dbt documentation site of the warehouse.

``dbt docs generate`` needs the project's own profiles folder and the data
folder's warehouse (the profile reads ``CQI_DATA_DIR``); this command sets
both, so the README can give one command. The site is written under the data
folder, not ``dbt_project/target``, because the catalog describes one
deployment's warehouse and the Dagster assets read the manifest in
``target/``. It takes the run lock: DuckDB allows one writer, and dbt opens
the warehouse read-write.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from ..settings import DBT_PROJECT_DIR, paths
from .app import ExitCode, app, export_paths, fail, refuse_if_busy
from .progress import task


def docs_folder() -> Path:
    return paths().data_dir / "dbt_docs"


@app.command()
def docs() -> None:
    """Generate the dbt documentation (models, columns, lineage, catalog) of the built warehouse."""
    from ..cycle import RunInProgress, exclusive_run

    export_paths()
    warehouse = paths().warehouse
    if not warehouse.exists():
        fail(f"no warehouse at {warehouse} yet: build it first (cqi demo, or cqi run after sites submit)")
    refuse_if_busy()
    target = docs_folder()
    dbt = Path(sys.executable).parent / "dbt"
    command = [str(dbt), "docs", "generate", "--static", "--project-dir", str(DBT_PROJECT_DIR),
               "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target),
               "--log-path", str(target / "logs")]
    try:
        with exclusive_run(), task("dbt docs generate"):
            done = subprocess.run(command, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    except RunInProgress as exc:
        fail(str(exc), ExitCode.BUSY)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        fail(f"dbt docs generate failed (exit {done.returncode}):\n{tail}\nfull log: {target / 'logs'}")
    typer.echo(f"dbt documentation written to {target}")
    typer.echo(f"  open in a browser:  {target / 'static_index.html'}")
    typer.echo(f"  or serve it:        {dbt} docs serve --project-dir {DBT_PROJECT_DIR} "
               f"--profiles-dir {DBT_PROJECT_DIR} --target-path {target}")
