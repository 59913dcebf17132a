"""The first round of submissions: one file per active site and period.

Chooses which site-period is resubmitted and which carry the whole-file
problems (never a designated outlier or trend site, so a rejected file cannot
hide the signal the statistics must find), plants the row defects and writes
every file, returning the rows the truth records about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..registry import Registry
from . import identity
from .defects import Defect, apply_defects, file_order, plan_defects
from .scenario import Scenario
from .simulate import Simulation, stage_rng
from .tables import submission_table
from .writers import csv_bytes, write_bytes, write_problem_file

MIN_RESUBMISSION_ROWS = 20


@dataclass
class Submission:
    """One site-period file of the first round (cases ``start:stop`` of the simulation)."""

    index: int
    site_index: int
    site_id: str
    period: str
    start: int
    stop: int
    problem: dict | None = None
    resubmit: bool = False

    @property
    def rows(self) -> np.ndarray:
        return np.arange(self.start, self.stop)

    def relative(self, suffix: str = ".csv") -> Path:
        return Path("landing") / self.site_id / f"{self.site_id}_{self.period}{suffix}"

    def resubmission(self) -> Path:
        return Path("resubmissions") / self.site_id / f"{self.site_id}_{self.period}_v2.csv"


@dataclass
class Written:
    landing: list[Path] = field(default_factory=list)
    resubmitted: list[tuple[Submission, Path]] = field(default_factory=list)
    defect_rows: list[dict] = field(default_factory=list)
    problem_rows: list[dict] = field(default_factory=list)
    file_of_case: pa.Array | None = None   # relative path of the file carrying each case


def plan_files(roster, spans, counts: np.ndarray) -> list[Submission]:
    files: list[Submission] = []
    offsets = np.concatenate([[0], np.cumsum(counts.ravel())])
    for s_index, site in enumerate(roster):
        for p_index, span in enumerate(spans):
            cell = s_index * len(spans) + p_index
            if counts[s_index, p_index] > 0:
                files.append(Submission(len(files), s_index, site.site_id, span.period,
                                        int(offsets[cell]), int(offsets[cell + 1])))
    return files


def choose_special_files(files: list[Submission], scenario: Scenario, designated: set[int],
                         rng: np.random.Generator) -> None:
    """Pick the resubmitted file and one file per whole-file problem, avoiding designated sites."""
    pool = [f for f in files if f.site_index not in designated] or list(files)
    big = [f for f in pool if f.stop - f.start >= MIN_RESUBMISSION_ROWS]
    if pool and scenario.defects.get("kinds"):
        resubmitted = big[int(rng.integers(len(big)))] if big else max(pool, key=lambda f: f.stop - f.start)
        resubmitted.resubmit = True
        pool.remove(resubmitted)
    for problem in scenario.file_problems:
        if not pool:
            break
        eligible = pool
        if problem["kind"] == "xlsx_format":   # a workbook is written cell by cell: take a small file
            median = np.median([f.stop - f.start for f in pool])
            eligible = [f for f in pool if f.stop - f.start <= median]
        chosen = eligible[int(rng.integers(len(eligible)))]
        chosen.problem = problem
        pool.remove(chosen)


def _accent_latin1_files(sim: Simulation, files: list[Submission], name_field: str | None,
                         rng: np.random.Generator) -> None:
    """Give the Latin-1 file's patients accented names, so its encoding matters."""
    if not name_field or name_field not in sim.text:
        return
    for sub in files:
        if sub.problem and sub.problem["kind"] == "latin1_encoding":
            mask = np.zeros(sim.frame.n, dtype=bool)
            mask[sub.rows[rng.random(len(sub.rows)) < float(sub.problem.get("accented_share", 0.3))]] = True
            mask[sub.start] = True
            names = identity.accented_names(int(mask.sum()), rng)
            sim.text[name_field] = pc.replace_with_mask(sim.text[name_field], pa.array(mask), names)


def write_submissions(registry: Registry, scenario: Scenario, sim: Simulation, files: list[Submission],
                      out_dir: Path, seed: int, defects: bool) -> Written:
    f = scenario.field
    files_rng = stage_rng(seed, "files")
    if defects:
        choose_special_files(files, scenario, {s for s, _ in sim.effects.designation}, files_rng)
        _accent_latin1_files(sim, files, f("name"), files_rng)
    clean = submission_table(sim.frame, registry, sim.text)
    planned: list[Defect] = []
    if defects:
        normal = {sub.index: sub.rows for sub in files if sub.problem is None}
        forced = next((sub.index for sub in files if sub.resubmit), None)
        planned = plan_defects(scenario.defects, clean, normal, forced, stage_rng(seed, "defects"))
    dirty = apply_defects(clean, planned)
    by_file: dict[int, list[Defect]] = {}
    for defect in planned:
        by_file.setdefault(defect.file_index, []).append(defect)

    written = Written()
    site_ids = sorted({sub.site_id for sub in files})
    case_text = sim.text[f("case_id")]
    paths = []
    for sub in files:
        if sub.problem is None:
            order, numbered = file_order(sub.rows, by_file.get(sub.index, []))
            path = write_bytes(out_dir / sub.relative(), csv_bytes(dirty.take(pa.array(order))))
            written.defect_rows += [
                {"file": sub.relative().as_posix(), "site_id": sub.site_id, "period": sub.period,
                 "case_id": case_text[d.row].as_py(), "field": d.field, "kind": d.kind, "row_number": d.row_number,
                 "injected_value": d.injected, "original_value": d.original} for d in numbered]
        else:
            others = [s for s in site_ids if s != sub.site_id] or [sub.site_id + "X"]
            rows = clean.slice(sub.start, sub.stop - sub.start)
            other = others[int(files_rng.integers(len(others)))]
            path, note = write_problem_file(sub.problem["kind"], sub.problem, rows, registry, out_dir / sub.relative(),
                                            other, f("site_id"))
            written.problem_rows.append({"file": path.relative_to(out_dir).as_posix(), "site_id": sub.site_id,
                                         "period": sub.period, "kind": sub.problem["kind"],
                                         "expected_outcome": sub.problem.get("expected_outcome", "loaded"),
                                         "note": note})
        paths.append(path.relative_to(out_dir).as_posix())
        written.landing.append(path)
        if sub.resubmit:
            data = csv_bytes(clean.slice(sub.start, sub.stop - sub.start))
            written.resubmitted.append((sub, write_bytes(out_dir / sub.resubmission(), data)))
    sizes = [sub.stop - sub.start for sub in files]
    written.file_of_case = pa.array(paths, pa.string()).take(pa.array(np.repeat(np.arange(len(files)), sizes)))
    return written
