"""Benchmark: the M incremental cycle at two code versions, back to back (issue 9).

Why: harness runs an hour apart differ by more than a change's effect on
this machine (its speed varied twofold within a day). The two versions here
run the same incremental cycle on copies of one data folder, alternating,
``--rounds`` times.

- The data folder is the one the M harness left (``--work``). Each version
  first brings a copy of it to its own state, untimed: a first resubmission
  (the harness's resubmitted file with one more case) is run through it, so
  that its dbt models and tests start from what that version built. Every
  cycle runs at the same path, so each version's dbt keeps the parse of its
  warm-up, as a pipeline running on one data folder does.
- The timed change is a second resubmission (another case appended), run
  on a fresh copy of that version's folder in each round.
- Each version runs from a git worktree of its commit, with the harness's
  environment and worker. Every dbt, Dagster and Python import is that
  version's own.

    .venv/bin/python -m benchmarks.bench_incremental_ab --before d6a872a [--after HEAD] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness.runner import measured, summarise_cycle
from benchmarks.harness.scenarios import environment, resubmissions
from orchestration.settings import PROJECT_ROOT


def worktree(commit: str, root: Path) -> Path:
    """A checkout of ``commit`` with its dbt project parsed (parsing is not part of a cycle)."""
    path = root / commit
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=PROJECT_ROOT, check=True,
                   capture_output=True)
    subprocess.run([str(Path(sys.executable).parent / "dbt"), "parse", "--quiet"], cwd=path / "dbt_project",
                   check=True)
    return path


def changed_resubmission(source: Path, out: Path, added: int) -> Path:
    """The harness's resubmitted file, with its last case repeated ``added`` times under new case numbers."""
    original = resubmissions(source)[0]
    lines = original.read_text().splitlines()
    header, last = lines[0].split(","), lines[-1].split(",")
    extra = []
    for n in range(added):
        case = list(last)
        case[header.index("case_id")] = f"{last[header.index('case_id')]}{n}"
        extra.append(",".join(case))
    target = out / original.parent.name / original.name.replace(".csv", f"_ab{added}.csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([*lines, *extra]) + "\n")
    return target


def run_cycle(checkout: Path, data: Path, resent: Path, source: Path, registry: Path) -> dict:
    """Drop ``resent`` in ``data``'s landing zone and run the harness's cycle worker of ``checkout`` on it."""
    landing = data / "landing" / resent.parent.name
    landing.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resent, landing / resent.name)
    env = {**environment(data.parent, source, registry), "PYTHONPATH": str(checkout)}
    out = data.parent / "cycle.json"
    return summarise_cycle(measured([sys.executable, "-m", "benchmarks.harness.worker", "cycle", "--out", str(out)],
                                    env, out, cwd=checkout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cqi-bench/M-80x8x1000000"))
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    versions = {label: worktree(commit, root) for label, commit in (("before", args.before), ("after", args.after))}
    source, registry = args.work / "source", args.work / "registry"
    warm_up, timed = (changed_resubmission(source, root / "resent", added) for added in (1, 2))
    try:
        work = root / "work"   # every cycle runs here: dbt's parse of the warm-up stays valid (the path is in it)
        for label, checkout in versions.items():
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(args.work / "data", work / "data", symlinks=True)
            warmed = run_cycle(checkout, work / "data", warm_up, source, registry)
            if not warmed["success"]:
                raise SystemExit(f"{label}: the warm-up cycle failed: {warmed['failed_steps']} {warmed['failed_checks']}")
            (root / label).mkdir()
            shutil.move(work / "data", root / label / "data")
        for round_ in range(args.rounds):
            for label, checkout in versions.items():
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(root / label / "data", work / "data", symlinks=True)
                os.sync()   # the copy's writeback is not the cycle's
                cycle = run_cycle(checkout, work / "data", timed, source, registry)
                dbt = cycle.get("profile", {}).get("dbt", {})
                print(json.dumps({"round": round_ + 1, "version": label, "commit": args.before if label == "before"
                                  else args.after, "success": cycle["success"], "cycle_s": cycle["cycle_s"],
                                  "orchestration_s": cycle["orchestration_in_run_s"],
                                  **{stage: v["wall_s"] for stage, v in cycle["stages"].items()},
                                  "dbt_elapsed_s": {step: v.get("elapsed_s") for step, v in dbt.items()}}),
                      flush=True)
    finally:
        for checkout in versions.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=PROJECT_ROOT,
                           capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
