"""Benchmark: receive 1 million cases (all sites, all periods) through intake.

Target (issue 4): at most 30 s on a 2-core machine. Generation is not timed;
receiving is: archive every file, then read, map, cast, pseudonymise, load
and write a receipt for each, in batches, exactly as the intake asset does.

    .venv/bin/python benchmarks/bench_intake.py [--cases 1000000] [--source DIR]

``--source`` reuses a collaborative generated before (its ``landing`` folder).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from orchestration.intake.archive import archive_file
from orchestration.intake.receive import load_archived_files
from orchestration.registry import load_registry
from orchestration.settings import Paths, registry_dir
from orchestration.synth import generate_collaborative
from orchestration.warehouse import connect, ensure_schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--source", type=Path, help="a generated collaborative to reuse")
    args = parser.parse_args()
    registry = load_registry(registry_dir())
    with tempfile.TemporaryDirectory(prefix="cqi-bench-intake-") as folder:
        root = Path(folder)
        source = args.source or root / "source"
        if args.source is None:
            generate_collaborative(registry, source, cases=args.cases, sites=80, periods=8, seed=3)
        files = sorted(p for p in (source / "landing").rglob("*") if p.is_file())
        folders = Paths(root / "data").ensure()
        statuses: dict[str, int] = {}
        started = time.perf_counter()
        with connect(folders.warehouse) as con:
            ensure_schema(con, registry)
            archived = [archive_file(path, path.parent.name, folders.archive) for path in files]
            for receipt in load_archived_files(con, registry, folders, archived, b"benchmark"):
                statuses[receipt.status] = statuses.get(receipt.status, 0) + 1
            rows = con.execute("select count(*) from raw.cases").fetchone()[0]
        wall = time.perf_counter() - started
    print(json.dumps({"benchmark": "intake", "cases": args.cases, "files": len(files), "rows_loaded": rows,
                      "statuses": statuses, "wall_s": round(wall, 2), "target_s": 30,
                      "per_file_ms": round(1000 * wall / len(files), 1),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}, indent=2))


if __name__ == "__main__":
    main()
