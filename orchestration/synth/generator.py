"""Generate a whole synthetic collaborative: roster, submissions, resubmissions and the truth.

The pipeline is tested against data whose answers are known: true risk
coefficients, true site effects (with designated outliers and trends), and
every injected defect and file problem. ``generate_collaborative`` writes the
files a coordinating centre would receive plus a ``truth/`` folder the
pipeline never reads, so end-to-end tests can check that the pipeline finds
what was planted and nothing else. The same seed gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..registry import Registry
from .roster import choose_periods, choose_sites, site_period_counts
from .scenario import load_scenario
from .simulate import simulate, stage_rng
from .submissions import plan_files, write_submissions
from .truth import write_roster, write_truth


@dataclass(frozen=True)
class SynthResult:
    """What was written: the folder, counts, and the files by kind (absolute paths)."""

    out_dir: Path
    counts: dict
    sites_file: Path
    landing_files: list[Path] = field(default_factory=list)
    resubmission_files: list[Path] = field(default_factory=list)
    truth_files: list[Path] = field(default_factory=list)


def generate_collaborative(registry: Registry, out_dir: Path, cases: int = 6000, sites: int | None = None,
                           periods: int | None = None, seed: int = 20251, defects: bool = True) -> SynthResult:
    """Write a synthetic collaborative for ``registry`` into ``out_dir`` and return what was written.

    ``sites=None`` uses the registry's roster (a larger number generates
    S001..Snnn, a smaller one takes the first sites); ``periods=None`` uses
    the registry calendar (a larger number extends it); ``cases`` is the
    total over all sites and periods. ``defects=False`` writes clean files
    only (no row defects, file problems or resubmission).
    """
    if cases < 1:
        raise ValueError("cases must be at least 1")
    out_dir = Path(out_dir)
    scenario = load_scenario(registry)
    roster_rng = stage_rng(seed, "roster")
    spans = choose_periods(registry, periods)
    roster = choose_sites(registry, sites, scenario.roster, spans[0].period, roster_rng)
    counts, _ = site_period_counts(roster, spans, cases, scenario.volume, roster_rng)

    sim = simulate(registry, scenario, roster, spans, counts, seed)
    files = plan_files(roster, spans, counts)
    written = write_submissions(registry, scenario, sim, files, out_dir, seed, defects)

    summary = {
        "cases": sim.frame.n, "sites": len(roster), "periods": len(spans), "landing_files": len(written.landing),
        "resubmission_files": len(written.resubmitted), "defects": len(written.defect_rows),
        "file_problems": len(written.problem_rows),
        "events": {m: int(r["y"].sum()) for m, r in sim.outcomes.items()},
    }
    arguments = {"cases": cases, "sites": sites, "periods": periods, "seed": seed, "defects": defects}
    sites_file = write_roster(out_dir / "sites.csv", roster)
    truth_files = write_truth(registry, scenario, sim, roster, spans, written, out_dir, arguments, summary)
    return SynthResult(out_dir, summary, sites_file, written.landing, [p for _, p in written.resubmitted],
                       truth_files)
