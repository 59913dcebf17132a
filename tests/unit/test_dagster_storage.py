"""The project's Dagster storage (orchestration/dagster_storage.py): what a run over many receptions records.

A run over a range of reception partitions is planned with one event per
intake asset (not one per reception: issue 9), and still records every
reception's materialisation, once, in the run's log and in the cross-run index.
"""

import os
import shutil

import dagster as dg
import pytest

from orchestration.dagster_storage import CqiSqliteEventLogStorage, CqiSqliteStorage
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
