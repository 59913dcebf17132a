"""The shared ``cqi`` Typer application and the helpers every command uses.

Exit codes are part of the interface: schedulers and scripts branch on them,
so every command uses the same few (``ExitCode``), and the README lists them.
"""

from __future__ import annotations

import fcntl
import os
import re
from enum import IntEnum
from typing import NoReturn

import typer

from ..settings import paths, registry_dir

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="cqi-warehouse: registry intake, data quality, risk-adjusted marts and feedback. "
                       "Exit codes: 0 ok, 1 the pipeline failed or has not produced what was asked yet, "
                       "2 bad usage, 3 file rejected, 4 another run in progress.")

DEMO_SEED = 20251
PERIOD_PATTERN = re.compile(r"^\d{4}Q[1-4]$")


class ExitCode(IntEnum):
    """What a script can rely on (README, 'Commands')."""

    OK = 0
    FAILED = 1      # a run, gate or verification failed, or nothing has been produced yet (run the pipeline)
    USAGE = 2       # bad options, unknown site, period or query id, bad SQL, invalid registry definition
    REJECTED = 3    # cqi submit: the file was rejected (its receipt says why)
    BUSY = 4        # another pipeline run holds the warehouse; try again when it has finished


def export_paths() -> None:
    """Child processes (dbt) must see the same data folder as this one."""
    os.environ["CQI_DATA_DIR"] = str(paths().data_dir)


def fail(message: str, code: int = ExitCode.FAILED) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code`` (see ``ExitCode``)."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(int(code))


def refuse_if_busy(hint: str = "") -> None:
    """Exit 4 at once when another run holds the deployment's run lock.

    Only a fast path, so a person is not kept waiting for the Dagster imports
    just to be refused: the lock that counts is taken by
    ``orchestration.cycle.exclusive_run`` (same file) when the run starts.
    """
    path = paths().data_dir / ".run.lock"
    if not path.exists():
        return
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "pid unknown"
            fail(f"another pipeline run is in progress ({holder}); wait for it to finish, then try again{hint}",
                 ExitCode.BUSY)
        fcntl.flock(handle, fcntl.LOCK_UN)


def load_registry_or_fail():
    """The registry, or exit 2 with its problems: a broken definition is a usage error, not a crash."""
    from ..registry import RegistryError, load_registry

    folder = registry_dir()
    if not folder.is_dir():
        fail(f"no registry definition at {folder}: set CQI_REGISTRY to one of the folders in registries/ "
             "or CQI_REGISTRY_DIR to a registry folder", ExitCode.USAGE)
    try:
        return load_registry(folder)
    except RegistryError as exc:
        fail(f"the registry definition at {folder} has problems (cqi validate lists them all):\n{exc}",
             ExitCode.USAGE)


def known_site(site: str) -> None:
    sites = load_registry_or_fail().site_ids()
    if site not in sites:
        fail(f"unknown site {site!r}; the roster has {', '.join(sites[:12])}{' ...' if len(sites) > 12 else ''}",
             ExitCode.USAGE)


def known_period(period: str) -> None:
    """Refuse a period outside the registry's calendar before any run starts."""
    periods = [p.period for p in load_registry_or_fail().periods]
    if not PERIOD_PATTERN.match(period):
        fail(f"{period!r} is not a period: periods are written like {periods[-1]}", ExitCode.USAGE)
    if period not in periods:
        fail(f"{period} is not in the registry's calendar, which runs {periods[0]}..{periods[-1]}", ExitCode.USAGE)
