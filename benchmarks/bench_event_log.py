"""Benchmark: storing a cycle run's Dagster events, with Dagster's SQLite event log and with cqi's (issue 9).

Replays every event of a run the M harness left (``--home``, its Dagster
home; by default its latest run) into new runs of a copy of that home, in
turn with Dagster's ``SqliteEventLogStorage`` (an engine, a connection and
a closed WAL per transaction) and with ``CqiSqliteEventLogStorage``
(``orchestration/dagster_storage.py``: kept connections), ``--repeats``
times each, alternating, so that both see the same machine.

    .venv/bin/python benchmarks/bench_event_log.py [--home /tmp/cqi-bench/M-80x8x1000000/data/dagster_home] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/cqi-bench/M-80x8x1000000/data/dagster_home"))
    parser.add_argument("--run", help="run id to replay (default: the latest run)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from orchestration.dagster_storage import CqiSqliteEventLogStorage

    copy = Path(tempfile.mkdtemp()) / "dagster_home"
    shutil.copytree(args.home, copy)
    shards = copy / "history" / "runs"
    run = args.run or max((p for p in shards.glob("*.db") if p.stem != "index"), key=lambda p: p.stat().st_mtime).stem
    reader = SqliteEventLogStorage(str(shards))
    events = [record.event_log_entry for record in reader.get_records_for_run(run, limit=1_000_000).records]
    reader.dispose()
    print(f"run {run}: {len(events)} events", flush=True)
    for repeat in range(args.repeats):
        for label, kind in [("dagster", SqliteEventLogStorage), ("cqi", CqiSqliteEventLogStorage)]:
            storage = kind(str(shards))
            replay = str(uuid.uuid4())
            started = time.perf_counter()
            for event in events:
                storage.store_event(event._replace(run_id=replay))
            seconds = time.perf_counter() - started
            storage.dispose()
            print(f"round {repeat + 1}, {label}: {seconds:.2f} s, {1000 * seconds / len(events):.1f} ms an event",
                  flush=True)
    shutil.rmtree(copy.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
