"""Benchmark: a state-sized collaborative (1,000,000 cases, 80 sites, 8 quarters, defects on).

Prints wall time, peak resident memory and what was written, as JSON. The
target is 60 s on a 2-core machine; generation is vectorised (numpy, Arrow
CSV writer), so the time is dominated by writing ~1 GB of CSV and Parquet.

    .venv/bin/python benchmarks/bench_synth.py [--cases N] [--sites K] [--periods P] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestration.registry import load_registry  # noqa: E402
from orchestration.settings import registry_dir  # noqa: E402
from orchestration.synth import generate_collaborative  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=80)
    parser.add_argument("--periods", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20251)
    parser.add_argument("--keep", type=Path, default=None, help="write here instead of a temporary folder")
    args = parser.parse_args(argv)
    registry = load_registry(registry_dir())
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as scratch:
        out = args.keep or Path(scratch)
        started = time.perf_counter()
        result = generate_collaborative(registry, out, cases=args.cases, sites=args.sites, periods=args.periods,
                                        seed=args.seed, defects=True)
        seconds = time.perf_counter() - started
        written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux
    report = {
        "benchmark": "synth_generate_collaborative",
        "cases": args.cases, "sites": args.sites, "periods": args.periods,
        "wall_seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "bytes_written": written,
        "landing_files": result.counts["landing_files"],
        "defects": result.counts["defects"],
        "target_seconds": 60,
        "within_target": seconds <= 60,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
