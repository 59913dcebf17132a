"""Benchmark: the whole quality suite (SQL path) over a 1,000,000-row load.

Generates the synthetic collaborative (80 sites, 8 quarters, defects on),
loads every ordinary site file into ``raw.cases`` in bulk with the intake's
own SQL (dictionary casts, pseudonymisation, cell findings; one submission
per file), then times one quality run: findings for every row and
site-period check, grades, the query lifecycle, scorecards and the
worklists (CSV, XLSX, HTML per site). Prints JSON with the wall time and the
peak resident memory during the timed run. Target: 30 s.

    .venv/bin/python benchmarks/bench_quality.py [--cases N] [--sites K] [--periods P] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestration.intake.cast import cast_findings_sql, period_expression, typed_columns  # noqa: E402
from orchestration.quality.findings import compute_findings  # noqa: E402
from orchestration.quality.lifecycle import update_queries  # noqa: E402
from orchestration.quality.queries import ensure_query_tables  # noqa: E402
from orchestration.quality.scorecards import write_scorecards  # noqa: E402
from orchestration.quality.worklists import write_worklists  # noqa: E402
from orchestration.registry import load_registry  # noqa: E402
from orchestration.settings import Paths, registry_dir  # noqa: E402
from orchestration.synth import generate_collaborative  # noqa: E402
from orchestration.warehouse import connect, ensure_schema  # noqa: E402

SECRET = b"benchmark-secret"
PERIOD = re.compile(r"(\d{4}Q[1-4])")


class PeakRss:
    """Samples the process's resident memory (DuckDB's included) while the block runs."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak = max(self.peak, int(line.split()[1]))
            self._stop.wait(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def bulk_load(con, registry, source: Path) -> int:
    """Every ordinary CSV (not a whole-file problem) into raw.cases, one accepted submission per file."""
    problems = {line.split(",")[0] for line in (source / "truth" / "file_problems.csv").read_text().splitlines()[1:]}
    files = [p for p in sorted((source / "landing").rglob("*.csv")) if p.relative_to(source).as_posix() not in problems]
    listing = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"
    con.execute(f"create or replace temp table text_rows as select *, "
                f"row_number() over () as row_number, "
                f"row_number() over (partition by filename order by (select 1)) as file_row "
                f"from read_csv({listing}, all_varchar = true, header = true, filename = true)")
    columns = {v.name: v.name for v in registry.variables}
    typed = typed_columns(registry, columns, SECRET)
    selects = ", ".join(f'{sql} as "{name}"' for name, sql in typed.items())
    ids = [(str(p), f"{p.parent.name}-{hashlib.sha256(str(p).encode()).hexdigest()[:16]}",
            PERIOD.search(p.name).group(1)) for p in files]
    con.execute("create or replace temp table file_ids as select unnest(?) as filename, unnest(?) as submission_id, "
                "unnest(?) as declared", [[i[0] for i in ids], [i[1] for i in ids], [i[2] for i in ids]])
    op_period = period_expression("operation_date", registry.calendar.period_length)
    column_list = ", ".join(f'"{c.name}"' for c in registry.warehouse_columns)
    con.execute(f"insert into raw.cases ({column_list}, submission_id, file_checksum, row_number, period) "
                f"select {column_list}, submission_id, submission_id, row_number, coalesce({op_period}, declared) "
                f"from (select f.submission_id, f.declared, t.file_row as row_number, {selects} "
                f"      from text_rows t join file_ids f using (filename)) where case_id is not null")
    # cell findings: the intake's cast-finding SQL over all files at once (row_number is global here)
    con.execute(f"insert into intake.cell_findings select f.submission_id, t.file_row, c.field, c.value, c.problem "
                f"from ({cast_findings_sql(registry, columns, 'text_rows')}) c "
                f"join text_rows t using (row_number) join file_ids f on f.filename = t.filename")
    con.execute("insert into intake.submissions "
                "select submission_id, row_number() over (order by filename), split_part(submission_id, '-', 1), "
                "filename, submission_id, 0, now()::timestamp, 'accepted', null, n, n, 0, periods, null from ("
                "  select f.submission_id, f.filename, count(*) as n, list(distinct c.period) as periods "
                "  from file_ids f join raw.cases c using (submission_id) group by all)")
    return con.execute("select count(*) from raw.cases").fetchone()[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=80)
    parser.add_argument("--periods", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20251)
    parser.add_argument("--keep", type=Path, default=None, help="work here instead of a temporary folder")
    args = parser.parse_args(argv)
    registry = load_registry(registry_dir())
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as scratch:
        root = args.keep or Path(scratch)
        source = root / "source"
        started = time.perf_counter()
        if not (source / "truth" / "defects.csv").is_file():
            generate_collaborative(registry, source, cases=args.cases, sites=args.sites, periods=args.periods,
                                   seed=args.seed, defects=True)
        generated = time.perf_counter() - started
        registry = load_registry(registry_dir(), sites_file=source / "sites.csv")   # the generated roster
        folders = Paths(root / "data").ensure()
        folders.warehouse.unlink(missing_ok=True)
        with connect(folders.warehouse) as con:
            ensure_schema(con, registry)
            started = time.perf_counter()
            rows = bulk_load(con, registry, source)
            con.execute("drop table text_rows")
            loaded = time.perf_counter() - started
            timings = {}
            with PeakRss() as memory:
                started = time.perf_counter()
                ensure_query_tables(con)
                findings = compute_findings(con, registry)
                timings["findings_and_grades"] = time.perf_counter() - started
                mark = time.perf_counter()
                events = update_queries(con)
                write_scorecards(con)
                timings["queries_lifecycle_scorecards"] = time.perf_counter() - mark
                mark = time.perf_counter()
                write_worklists(con, registry, folders.worklists)
                timings["worklists"] = time.perf_counter() - mark
                seconds = time.perf_counter() - started
            grades = dict(con.execute("select status, count(*) from quality.site_period_status group by 1").fetchall())
    report = {
        "benchmark": "quality_suite_sql_path",
        "rows": rows, "sites": args.sites, "periods": args.periods,
        "wall_seconds": round(seconds, 2),
        "stage_seconds": {k: round(v, 2) for k, v in timings.items()},
        "peak_rss_mib": round(memory.peak / 1024, 1),
        "worklist_sites": len(registry.sites), "findings": findings, "queries_opened": events.get("opened", 0), "grades": grades,
        "generate_seconds": round(generated, 2), "load_seconds": round(loaded, 2),
        "target_seconds": 30, "within_target": seconds <= 30,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
