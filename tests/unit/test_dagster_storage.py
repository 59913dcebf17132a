"""The project's Dagster storage (orchestration/dagster_storage.py): what a run over many receptions records.

A run over a range of reception partitions is planned with one event per
intake asset (not one per reception: issue 9), and still records every
reception's materialisation, once, in the run's log and in the cross-run index.
Events are written over connections a process keeps open: Dagster's own
storage reads and writes the same databases beside them, a forked child
neither uses nor closes them, and their number is bounded.
"""

import os
import shutil

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from orchestration.dagster_storage import KEPT_CONNECTIONS, CqiSqliteEventLogStorage, CqiSqliteStorage
from orchestration.defs.intake.assets import INTAKE_KEYS
from orchestration.defs.intake.partitions import range_tags, submissions_partitions
from orchestration.settings import PROJECT_ROOT

RECEPTIONS = [f"S{i:02d}.20250101T000000{i:06d}.{i:012x}" for i in range(7)]


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """An instance opened the way ``cqi`` opens it: the repository's dagster.yaml in DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with dg.DagsterInstance.get() as opened:
        yield opened
    os.environ.pop("DAGSTER_EVENT_BATCH_SIZE", None)


def intake_shaped_job(fail: bool = False):
    """One step shaped like the intake asset (three assets on the reception partitions, one run per range)."""

    @dg.multi_asset(specs=[dg.AssetSpec(key) for key in INTAKE_KEYS], partitions_def=submissions_partitions,
                    backfill_policy=dg.BackfillPolicy.single_run())
    def site_submissions(context):
        assert list(context.partition_keys) == RECEPTIONS
        if fail:
            raise RuntimeError("killed")
        for key in INTAKE_KEYS:
            yield dg.MaterializeResult(asset_key=key)

    return dg.Definitions(assets=[site_submissions], jobs=[dg.define_asset_job("intake")],
                          executor=dg.in_process_executor).resolve_job_def("intake")


def test_the_instance_uses_the_project_storage_in_dagsters_default_files(instance):
    assert isinstance(instance.event_log_storage, CqiSqliteEventLogStorage)
    assert os.environ.get("DAGSTER_EVENT_BATCH_SIZE"), "opening the instance turns event batching on"
    home = os.environ["DAGSTER_HOME"]
    instance.add_dynamic_partitions(submissions_partitions.name, RECEPTIONS[:1])
    for relative in ("history/runs.db", "history/runs/index.db", "schedules/schedules.db"):
        assert os.path.isfile(os.path.join(home, relative)), relative
    assert CqiSqliteStorage.__mro__[1].__name__ == "DagsterSqliteStorage"


def test_a_ranged_run_is_planned_per_asset_and_materialises_every_reception_once(instance):
    instance.add_dynamic_partitions(submissions_partitions.name, RECEPTIONS)
    result = intake_shaped_job().execute_in_process(instance=instance, tags=range_tags(RECEPTIONS))
    assert result.success

    planned = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert len(planned) == len(INTAKE_KEYS)          # not one per reception and asset
    for entry in planned:
        subset = entry.dagster_event.event_specific_data.partitions_subset
        assert sorted(subset.get_partition_keys()) == sorted(RECEPTIONS)

    materialised = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert sorted((e.dagster_event.asset_key, e.dagster_event.partition) for e in materialised) == sorted(
        (key, reception) for key in INTAKE_KEYS for reception in RECEPTIONS)
    for key in INTAKE_KEYS:
        assert instance.get_materialized_partitions(key) == set(RECEPTIONS)
        records = instance.fetch_materializations(key, limit=100).records
        assert sorted(r.partition_key for r in records) == sorted(RECEPTIONS)
        assert instance.get_latest_materialization_event(key).run_id == result.run_id


def test_a_failed_ranged_run_materialises_nothing(instance):
    instance.add_dynamic_partitions(submissions_partitions.name, RECEPTIONS)
    result = intake_shaped_job(fail=True).execute_in_process(instance=instance, tags=range_tags(RECEPTIONS),
                                                             raise_on_error=False)
    assert not result.success
    for key in INTAKE_KEYS:
        assert instance.get_materialized_partitions(key) == set()


def checked_job():
    """An asset with a blocking asset check: the events a dbt step writes most (materialisations, check evaluations)."""

    @dg.asset
    def measured():
        return 1

    @dg.asset_check(asset=measured, blocking=True)
    def measured_is_one():
        return dg.AssetCheckResult(passed=True)

    return dg.Definitions(assets=[measured], asset_checks=[measured_is_one], jobs=[dg.define_asset_job("checked")],
                          executor=dg.in_process_executor).resolve_job_def("checked")


def dagsters_own_reader(instance) -> SqliteEventLogStorage:
    """Dagster's SQLite event log on the same folder, as another process (webserver, daemon) opens it."""
    return SqliteEventLogStorage(instance.event_log_storage._base_dir)


def test_events_written_over_kept_connections_read_the_same_in_dagsters_own_storage(instance):
    results = [checked_job().execute_in_process(instance=instance) for _ in range(3)]
    assert all(result.success for result in results)
    reader = dagsters_own_reader(instance)
    try:
        for result in results:
            written = instance.event_log_storage.get_records_for_run(result.run_id, limit=10_000).records
            read = reader.get_records_for_run(result.run_id, limit=10_000).records
            assert [(r.storage_id, r.event_log_entry.dagster_event_type) for r in read] == [
                (r.storage_id, r.event_log_entry.dagster_event_type) for r in written]
            assert any(r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION for r in read)
        check = dg.AssetCheckKey(dg.AssetKey("measured"), "measured_is_one")
        executions = reader.get_asset_check_execution_history(check, limit=10)
        assert sorted(e.run_id for e in executions) == sorted(r.run_id for r in results)
        assert reader.get_latest_materialization_events([dg.AssetKey("measured")])[
            dg.AssetKey("measured")].run_id == results[-1].run_id
        # and Dagster's storage writing beside the kept connections is seen by them
        reader.store_event(instance.all_logs(results[0].run_id)[0]._replace(run_id=results[-1].run_id))
        assert len(instance.all_logs(results[-1].run_id)) == len(reader.get_records_for_run(
            results[-1].run_id, limit=10_000).records)
    finally:
        reader.dispose()


def test_a_forked_child_neither_uses_nor_closes_the_parents_connections(instance):
    first = checked_job().execute_in_process(instance=instance)
    storage = instance.event_log_storage
    entry = instance.all_logs(first.run_id)[0]
    child = os.fork()
    if child == 0:      # the child writes a run of its own through the same storage object, then exits at once
        try:
            storage.store_event(entry._replace(run_id="written-by-a-child"))
            os._exit(0)
        finally:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    second = checked_job().execute_in_process(instance=instance)    # the parent's kept connections still work
    assert second.success
    assert len(storage.get_records_for_run("written-by-a-child").records) == 1
    for run_id in (first.run_id, second.run_id, "index"):
        with storage._connect(run_id) as conn:
            assert conn.exec_driver_sql("pragma integrity_check").scalar() == "ok"


def test_a_process_keeps_a_bounded_number_of_connections_and_wipe_closes_them(instance):
    for _ in range(KEPT_CONNECTIONS + 3):
        checked_job().execute_in_process(instance=instance)
    storage = instance.event_log_storage
    assert len(storage._engines) == KEPT_CONNECTIONS
    assert len(instance.get_runs()) == KEPT_CONNECTIONS + 3      # evicted runs remain readable
    assert all(len(instance.all_logs(run.run_id)) > 5 for run in instance.get_runs())
    instance.wipe()
    assert set(storage._engines) <= {"index"}        # run shards closed before their files went
    assert not [p for p in os.listdir(storage._base_dir) if p != "index.db" and not p.startswith("index.db-")]
    assert checked_job().execute_in_process(instance=instance).success
