"""``python -m orchestration.synth --out DIR``: write a synthetic collaborative."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..registry import load_registry
from ..settings import registry_dir
from .generator import generate_collaborative


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.synth", description=__doc__)
    parser.add_argument("--out", required=True, type=Path, help="folder to write into")
    parser.add_argument("--cases", type=int, default=6000, help="cases over all sites and periods")
    parser.add_argument("--sites", type=int, default=None, help="sites (default: the registry roster)")
    parser.add_argument("--periods", type=int, default=None, help="periods (default: the registry calendar)")
    parser.add_argument("--seed", type=int, default=20251)
    parser.add_argument("--no-defects", action="store_true", help="clean files only")
    parser.add_argument("--registry", type=Path, default=None, help="registry folder (default: CQI_REGISTRY_DIR)")
    args = parser.parse_args(argv)
    registry = load_registry(args.registry or registry_dir())
    started = time.perf_counter()
    result = generate_collaborative(registry, args.out, cases=args.cases, sites=args.sites, periods=args.periods,
                                    seed=args.seed, defects=not args.no_defects)
    summary = {"out_dir": str(result.out_dir), "seconds": round(time.perf_counter() - started, 2), **result.counts}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
