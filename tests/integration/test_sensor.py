"""The landing sensor: no file skipped, none processed twice, across runs and restarts."""

import dagster as dg
import duckdb
import pytest

from orchestration.defs.intake.partitions import submissions_partitions
from orchestration.registry import load_registry
from orchestration.settings import paths, registry_dir
from support import site_file

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CQI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CQI_PSEUDONYM_SECRET", "sensor-test")
    with dg.instance_for_test() as instance:
        yield load_registry(registry_dir()), paths().ensure(), instance


def tick(instance, cursor):
    from orchestration.definitions import defs

    sensor = defs.get_sensor_def("landing_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    result = sensor.evaluate_tick(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result.run_requests or [], result.cursor


def launch(instance, request):
    """Run the requested receptions through intake (the rest of the cycle is tested elsewhere)."""
    from orchestration.definitions import defs
    from orchestration.defs.intake.assets import INTAKE_KEYS

    job = defs.resolve_job_def("cqi_cycle")
    return job.execute_in_process(instance=instance, tags=request.tags, asset_selection=INTAKE_KEYS)


def test_files_dropped_during_a_run_are_taken_at_the_next_tick_exactly_once(env):
    registry, folders, instance = env
    site_file(registry, folders.landing, "S01", cases=30)
    site_file(registry, folders.landing, "S02", cases=30)
    first_requests, cursor = tick(instance, None)
    assert len(first_requests) == 1
    # A file arrives while the first run has not yet taken the others.
    site_file(registry, folders.landing, "S03", cases=30)
    second_requests, second_cursor = tick(instance, cursor)
    assert len(second_requests) == 1
    assert second_requests[0].tags["dagster/asset_partition_range_start"].startswith("S03.")
    # The daemon restarts before it stored the second tick: the retried tick asks for the same run.
    retried_requests, _ = tick(instance, cursor)
    assert retried_requests[0].run_key == second_requests[0].run_key
    # Both runs execute; afterwards nothing is left to take.
    assert launch(instance, first_requests[0]).success
    assert launch(instance, second_requests[0]).success
    assert tick(instance, second_cursor)[0] == []
    with duckdb.connect(str(folders.warehouse), read_only=True) as con:
        ledger = con.execute("select site_id, count(*) from intake.submissions group by 1 order by 1").fetchall()
        rows = con.execute("select site_id, count(*) from raw.cases group by 1 order by 1").fetchall()
    assert ledger == [("S01", 1), ("S02", 1), ("S03", 1)]
    assert rows == [("S01", 30), ("S02", 30), ("S03", 30)]
    assert sorted(instance.get_dynamic_partitions(submissions_partitions.name))[0].startswith("S01.")


def test_the_same_bytes_sent_again_are_a_duplicate_reception_not_a_second_load(env):
    registry, folders, instance = env
    path = site_file(registry, folders.landing, "S01", cases=12)
    content = path.read_bytes()
    requests, cursor = tick(instance, None)
    assert launch(instance, requests[0]).success
    path.write_bytes(content)  # the site uploads the same file again
    requests, cursor = tick(instance, cursor)
    assert len(requests) == 1 and launch(instance, requests[0]).success
    with duckdb.connect(str(folders.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.cases").fetchone()[0] == 12
        assert con.execute("select outcome from intake.receptions order by received_at").fetchall() == [
            ("processed",), ("duplicate",)]
