"""The shared ``cqi`` Typer application and the helpers every command uses."""

from __future__ import annotations

import os

import typer

from ..settings import paths, registry_dir

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="cqi-warehouse: registry intake, data quality, risk-adjusted marts and feedback.")

DEMO_SEED = 20251


def export_paths() -> None:
    """Child processes (dbt) must see the same data folder as this one."""
    os.environ["CQI_DATA_DIR"] = str(paths().data_dir)


def fail(message: str, code: int = 1) -> None:
    """Print ``message`` in red and exit with ``code`` (1 failure, 2 usage, 3 rejected)."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def known_site(site: str) -> None:
    from ..registry import load_registry

    sites = load_registry(registry_dir()).site_ids()
    if site not in sites:
        fail(f"unknown site {site!r}; the roster has {', '.join(sites[:12])}{' ...' if len(sites) > 12 else ''}", 2)
