"""Commands for analysts: ``funnel``."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .app import ExitCode, app, fail


class Indicator(str, Enum):
    proportion = "proportion"
    ratio = "ratio"


class Overdispersion(str, Enum):
    none = "none"
    multiplicative = "multiplicative"
    additive = "additive"


class Trim(str, Enum):
    winsorise = "winsorise"
    truncate = "truncate"


@app.command()
def funnel(groups: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with one row per group."),
           group: str = typer.Option(..., help="Column naming the group (site)."),
           numerator: str = typer.Option(..., help="Column of events (proportion) or observed (ratio)."),
           denominator: str = typer.Option(..., help="Column of cases (proportion) or expected (ratio)."),
           indicator: Indicator = typer.Option(Indicator.proportion, help="proportion or O/E ratio."),
           levels: str = typer.Option("0.95,0.998", help="Comma-separated interval levels."),
           overdispersion: Overdispersion = typer.Option(Overdispersion.none, help="Widen limits for overdispersion."),
           trim: Trim = typer.Option(Trim.winsorise, help="How extreme z-scores are trimmed before estimation."),
           trim_fraction: float = typer.Option(0.1, min=0.0, max=0.49, help="Share trimmed in each tail."),
           target: Optional[float] = typer.Option(None, help="Target (default: pooled rate, or 1 for a ratio)."),
           out: Optional[Path] = typer.Option(None, help="Write the CSV here instead of standard output."),
           ) -> None:
    """Funnel-plot limits and flags for any indicator; reports phi and tau-squared."""
    import pandas as pd

    from ..stats import funnel_table

    try:
        level_values = tuple(float(x) for x in levels.split(","))
    except ValueError:
        fail(f"--levels must be numbers separated by commas, for example 0.95,0.998; got {levels!r}", ExitCode.USAGE)
    try:
        frame = pd.read_csv(groups)
    except (ValueError, UnicodeDecodeError) as exc:   # pandas' parser and empty-file errors are ValueErrors
        fail(f"cannot read {groups} as CSV: {exc}", ExitCode.USAGE)
    missing = [c for c in (group, numerator, denominator) if c not in frame.columns]
    if missing:
        fail(f"{groups.name} has no column {', '.join(missing)}; its columns are {', '.join(map(str, frame.columns))}",
             ExitCode.USAGE)
    try:
        table = funnel_table(frame, group, numerator, denominator, indicator=indicator.value, levels=level_values,
                             overdispersion=overdispersion.value, trim=trim.value, trim_fraction=trim_fraction,
                             target=target)
    except ValueError as exc:
        fail(f"cannot compute the funnel: {exc}", ExitCode.USAGE)
    attrs = table.attrs
    if out:
        table.to_csv(out, index=False)
    else:
        table.to_csv(sys.stdout, index=False)
    typer.echo(f"phi={attrs['phi']:.4f} tau2={attrs['tau2']:.6g} adjusted={attrs['adjusted']} "
               f"target={attrs['target']:.6g} groups={attrs['n_used']}", err=True)
