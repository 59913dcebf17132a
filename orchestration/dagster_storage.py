"""The storage of the project's Dagster instance: Dagster's own SQLite storage, with planning per run.

Why not the default: every intake run covers a contiguous range of
reception partitions (``defs/intake/partitions.py``), and by default Dagster's
SQLite event log records one ``ASSET_MATERIALIZATION_PLANNED`` event per
partition *and* intake asset (three of them) when it creates the run, each in
its own pair of SQLite transactions (run shard and index shard, a few
milliseconds of fsync each). At 640 receptions that is ~2,000 events and 13 to
35 s before the run's first step; at 5,600 receptions (a national cycle)
~17,000 events and several minutes, spent by ``cqi run`` or by the daemon's
sensor tick before anything is received. The same storage written here
records one planned event per asset carrying the run's partition subset, as
Dagster's own opt-in ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` does
(dagster-io/dagster#29288), but for this instance in every process that opens
it, not only where that variable is set: run creation no longer depends on
the number of receptions.

The same holds once the intake step has run: Dagster records one
``ASSET_MATERIALIZATION`` per reception and intake asset, and writes them
as one batch when event batching is on (``DAGSTER_EVENT_BATCH_SIZE``), but
its SQLite event log stores a batch event by event, four transactions each
(7 to 27 ms an event here: ~2,000 events for 640 receptions, ~17,000 for
5,600, dagster-io/dagster#18789). The event log here stores a batch of asset
events in two transactions, one per database, and opening the instance turns
batching on for the process (unless ``DAGSTER_EVENT_BATCH_SIZE`` is set already).

What it costs: the Dagster UI no longer shows the receptions of a failed or
running intake run as failed or in progress partition by partition (Dagster
derives those from per-partition planned events); a reception's partition is
materialised once its run loads it, as before. Nothing in cqi reads those
partition states: a reception's status is its receipt and the ledger
(``cqi status``), and a killed run's receptions are taken up again by the next
run from the manifests (``cycle.unfinished_receptions``).

Every transaction also reuses a connection the process keeps open, where
Dagster opens and closes an engine for each (``CqiSqliteEventLogStorage._connect``
says why; about 15 ms an event before, 3 ms after,
``benchmarks/bench_event_log.py``).

Configured in the repository's ``dagster.yaml`` (``storage: custom:``), so the
``cqi`` commands, the daemon, the webserver and run workers all open it. The
folders and databases are exactly those of Dagster's default storage under
``DAGSTER_HOME``, so an existing deployment keeps its history.
"""

from __future__ import annotations

import os
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as db
from sqlalchemy.pool import StaticPool

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

# Events Dagster hands to ``store_event_batch`` at most at once (a run's planned events, the
# materialisations of one output over its partitions); read by Dagster at every event.
EVENT_BATCH_SIZE = "1000"

# Databases (run shards and the index) whose connection a process keeps open: the run being
# written, the index, and a few a webserver or daemon reads in turn.
KEPT_CONNECTIONS = 8


class CqiSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log: ranged runs planned per asset, batches of asset events stored together,
    connections kept open."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, db.Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        super().__init__(base_dir, inst_data=inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.Connection]:
        """One transaction on ``shard``, over a connection this process keeps open.

        Dagster's own ``_connect`` creates an engine, opens a connection and
        closes both for every transaction, and a run writes several hundred
        (every log line, step event, materialisation and asset check
        evaluation; a dbt step alone emits one per model and test). Measured on
        the M benchmark's incremental run (``benchmarks/bench_event_log.py``):
        a new engine recompiles every statement (its cache dies with it), and
        closing a database's last connection checkpoints and removes its WAL
        file, fsyncs included. A connection kept open avoids both; the
        databases, their WAL journal and their locking are Dagster's own, so
        other processes (daemon, webserver, run workers) read and write them as
        before. Commits no longer wait for the disk (``synchronous=NORMAL``,
        which SQLite documents as safe from corruption in WAL mode): what a
        power cut can lose is the last events of a run's log, never a received
        file or the warehouse.
        """
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _engine(self, shard: str) -> db.Engine:
        """The kept engine of ``shard`` (least recently used beyond ``KEPT_CONNECTIONS`` closed)."""
        if self._engines_pid != os.getpid():
            # A forked child must not use, or close, its parent's connections (closing the
            # last connection of a WAL database checkpoints and removes the parent's WAL).
            _inherited.extend(self._engines.values())
            self._engines, self._engines_pid = OrderedDict(), os.getpid()
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = db.create_engine(self.conn_string_for_shard(shard), poolclass=StaticPool,
                                      connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                                    "check_same_thread": False})
            db.event.listen(engine, "connect", _commit_without_fsync)
        self._engines[shard] = engine
        while len(self._engines) > KEPT_CONNECTIONS:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    def _close_connections(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close_connections()   # run shards' files are removed
        super().wipe()

    def upgrade(self) -> None:
        self._close_connections()
        super().upgrade()

    def dispose(self) -> None:
        self._close_connections()
        super().dispose()

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store asset events of one run as ``store_event`` does, in one transaction per database.

        Anything else (asset check or run events, several runs) is stored event by event.
        """
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1 or not all(event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS
                                        for event in events):
            for event in events:
                self.store_event(event)
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(run_ids.pop()) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # The run's own log is written (one transaction): from here on a failure must not make Dagster
        # store the batch again event by event, which would write those events twice in the run's log.
        try:
            with self.index_transaction() as conn:
                self._mirror_in_index(conn, events, rows)
        except Exception:
            for event, row in zip(events, rows):
                with self.index_transaction() as conn:
                    self._mirror_in_index(conn, [event], [row])

    def _mirror_in_index(self, conn, events: Sequence[EventLogEntry], rows: Sequence[dict]) -> None:
        """What ``SqliteEventLogStorage.store_event`` writes in the index shard for asset events."""
        event_ids = []
        insert = SqlEventLogStorageTable.insert()
        for row in rows:
            result = conn.execute(insert, row)
            event_ids.append(result.inserted_primary_key[0])
            result.close()
        if any(event_id is None for event_id in event_ids):
            raise RuntimeError("the index shard returned no id for an asset event")
        self._store_asset_event_tags(conn, events, event_ids)
        # An asset's row only keeps the latest event of each kind (every column written is
        # overwritten): the last event of each asset and kind, in their order, leaves it as all would.
        last: dict[tuple, int] = {}
        for i, event in enumerate(events):
            last[(event.dagster_event.asset_key, event.dagster_event_type)] = i
        for i in sorted(last.values()):
            self._store_asset_event(conn, events[i], event_ids[i])


# Engines a forked child inherited: kept referenced, never used, so the child never closes them.
_inherited: list = []


def _commit_without_fsync(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class CqiSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage under ``base_dir`` (``DAGSTER_HOME``), with the event log above."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data=inst_data)
        default = self._event_log_storage
        self._event_log_storage = CqiSqliteEventLogStorage(default._base_dir)
        default.dispose()
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls.from_local(inst_data=inst_data, **config_value)
