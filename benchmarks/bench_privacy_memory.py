"""Benchmark: the privacy checks of a release with and without what earlier checks kept (issue 9).

Runs the checks on the two latest releases of a period in a data folder the M
harness left (``--data``): the latest without memory, then the previous one
with an empty memory (everything scanned and kept), then the latest with that
memory (only files the previous release did not hold are scanned), twice.

    .venv/bin/python benchmarks/bench_privacy_memory.py [--data /tmp/cqi-bench/M-80x8x1000000/data] [--period 2026Q4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/cqi-bench/M-80x8x1000000/data"))
    parser.add_argument("--registry", type=Path, default=Path("/tmp/cqi-bench/M-80x8x1000000/registry"))
    parser.add_argument("--period", default="2026Q4")
    args = parser.parse_args()

    from orchestration.publish.inputs import PublicationInputs
    from orchestration.publish.privacy import privacy_problems_by_kind
    from orchestration.publish.publication import patient_key_lookup
    from orchestration.publish.release import INPUTS
    from orchestration.registry import load_registry

    releases = sorted((args.data / "publish" / "releases" / args.period).iterdir(), key=lambda p: p.stat().st_mtime)
    registry = load_registry(args.registry)
    memory = Path(tempfile.mkdtemp()) / "privacy"
    for label, folder, kept in [("latest, no memory", releases[-1], None), ("previous, empty memory", releases[-2], memory),
                                ("latest, memory of previous", releases[-1], memory),
                                ("latest, memory of latest", releases[-1], memory)]:
        started = time.perf_counter()
        inputs = PublicationInputs.load(folder / INPUTS)
        problems = privacy_problems_by_kind(folder, registry, inputs.sites, inputs.cases,
                                            patient_key_lookup(args.data / "warehouse.duckdb"), memory_dir=kept)
        print(f"{label}: {time.perf_counter() - started:.2f} s, problems {[len(k) for k in problems]}", flush=True)


if __name__ == "__main__":
    main()
