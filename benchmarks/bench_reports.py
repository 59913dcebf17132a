"""Benchmark: render 700 sites' feedback reports (4 measures, 8 periods, ~1,500 cases per site) and the overview.

Prints JSON with the wall time of rendering (inputs are generated first and
not timed) and the report sizes. Target: publishing 700 sites' packages in at
most 120 s, so rendering the reports should stay well below, aim < 60 s. The
whole publication (packages, checks, manifest, release) is timed by
benchmarks/bench_publish.py.
The peer layers of the funnel and caterpillar plots are built once per period
(``prepare_peer_charts``), as a publication does.

    .venv/bin/python benchmarks/bench_reports.py [--sites 700] [--periods 8] [--cases 1500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from orchestration.reports import prepare_peer_charts, render_overview, render_site_report  # noqa: E402
from orchestration.reports.sample import (  # noqa: E402
    MEASURES,
    quarters,
    sample_cases,
    sample_quality,
    sample_results,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=700)
    parser.add_argument("--periods", type=int, default=8)
    parser.add_argument("--cases", type=int, default=1500)
    parser.add_argument("--keep", type=Path, default=None, help="write the reports here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    periods = quarters(2024, args.periods)
    period = periods[-1]
    sites = [f"S{i:04d}" for i in range(args.sites)]
    results, curves = sample_results(sites, periods, cases_per_period=args.cases / args.periods)
    cases = {s: sample_cases(s, periods, cases=args.cases, seed=i) for i, s in enumerate(sites)}
    quality = {s: sample_quality(s, periods, results, seed=i) for i, s in enumerate(sites)}
    inputs_seconds = time.perf_counter() - started

    started = time.perf_counter()
    peer = prepare_peer_charts(results, curves, period, MEASURES)
    peer_seconds = time.perf_counter() - started
    sizes = []
    for s in sites:
        html = render_site_report(s, f"Hospital {s}", period, results, curves, cases[s], quality[s], MEASURES,
                                  "General Surgery Quality Collaborative", generated_at="2026-03-16 09:00 UTC",
                                  peer_charts=peer)
        sizes.append(len(html.encode("utf-8")))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            (args.keep / f"{s}.html").write_text(html, encoding="utf-8")
    sites_seconds = time.perf_counter() - started

    started = time.perf_counter()
    quality_all = pd.concat([q.assign(site_id=s) for s, q in quality.items()], ignore_index=True)
    overview = render_overview(period, results, quality_all, None, None, "General Surgery Quality Collaborative",
                               measures=MEASURES, funnel_curves=curves, generated_at="2026-03-16 09:00 UTC")
    overview_seconds = time.perf_counter() - started

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {
        "benchmark": "reports_render",
        "sites": args.sites, "measures": len(MEASURES), "periods": args.periods, "cases_per_site": args.cases,
        "inputs_seconds_untimed": round(inputs_seconds, 2),
        "peer_layers_seconds": round(peer_seconds, 2),
        "site_reports_wall_seconds": round(sites_seconds, 2),
        "per_site_ms": round(1000 * sites_seconds / max(args.sites, 1), 1),
        "overview_seconds": round(overview_seconds, 2),
        "wall_seconds": round(sites_seconds + overview_seconds, 2),
        "site_report_kib_mean": round(sum(sizes) / max(len(sizes), 1) / 1024, 1),
        "site_reports_mib_total": round(sum(sizes) / 2**20, 1),
        "overview_kib": round(len(overview.encode("utf-8")) / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "target_seconds": 60,
        "within_target": sites_seconds + overview_seconds <= 60,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
