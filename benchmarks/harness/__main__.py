"""``python -m benchmarks.harness --scenario S|M|L|smoke``: run a scenario, write its JSON (and the README table).

    .venv/bin/python -m benchmarks.harness --scenario S --write-readme
    .venv/bin/python -m benchmarks.harness --scenario L --cases 200000      # L's 700 sites, fewer cases
    .venv/bin/python -m benchmarks.harness --render-only                   # README from the stored JSON
    .venv/bin/python -m benchmarks.harness --scenario M --refloor          # re-measure only M's floors
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .readme import RESULTS_DIR, write_readme
from .runner import refloor, run_scenario
from .scenarios import SCENARIOS
from .targets import targets_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="S")
    parser.add_argument("--cases", type=int, default=None, help="override the scenario's case count")
    parser.add_argument("--sites", type=int, default=None, help="override the scenario's site count")
    parser.add_argument("--work", type=Path, default=None,
                        help="work folder (generated data is cached here; default /tmp/cqi-bench/<scenario>)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of the results JSON")
    parser.add_argument("--write-readme", action="store_true", help="regenerate benchmarks/README.md")
    parser.add_argument("--refloor", action="store_true",
                        help="re-measure only the floors of the stored result (its work folder must still exist)")
    parser.add_argument("--render-only", action="store_true", help="only regenerate the README from stored JSON")
    args = parser.parse_args(argv)
    if args.render_only:
        print(write_readme(args.results))
        return 0
    scenario = SCENARIOS[args.scenario].resized(args.cases, args.sites)
    resized = scenario != SCENARIOS[args.scenario]
    work = args.work or Path(tempfile.gettempdir()) / "cqi-bench" / (
        f"{scenario.name}-{scenario.sites}x{scenario.periods}x{scenario.cases}")
    name = scenario.name if not resized else f"{scenario.name}-{scenario.sites}x{scenario.cases}"
    out = args.results / f"{name}.json"
    if args.refloor:
        result = refloor(json.loads(out.read_text()), work)
    else:
        result = run_scenario(scenario, work, log=lambda m: print(m, file=sys.stderr, flush=True))
    result["resized"] = resized
    result["targets"] = targets_for(result) if not resized else []
    args.results.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    if args.write_readme:
        print(f"wrote {write_readme(args.results)}", file=sys.stderr)
    print(json.dumps({"scenario": name, "full_cycle_s": result["full"]["cycle_s"],
                      "incremental_cycle_s": result["incremental"]["cycle_s"],
                      "floor_s": result["floor"]["full"]["wall_s"], "targets": result["targets"]}, indent=2))
    return 0 if result["full"]["success"] and result["incremental"]["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
