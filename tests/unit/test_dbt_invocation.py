"""What an invocation of dbt costs before dbt itself runs.

dbt invocations reuse the parse state of the last invocation in the same environment.

dagster-dbt seeds each invocation's target folder from the project target's
``partial_parse.msgpack``; dbt throws that file away when it was written
under another profile (the warehouse path is part of it). The dbt assets copy
each invocation's file back (``keep_partial_parse``), so the next invocation
parses only what changed. Real dbt processes, two warehouse paths.

The resource neither runs ``dbt --version`` nor builds a dbt adapter in the
Dagster process before each invocation.
"""

import os
import shutil
import subprocess

import pytest

from orchestration.defs.warehouse.dbt_assets import DBT_EXECUTABLE, PARTIAL_PARSE, dbt_resource, keep_partial_parse
from orchestration.settings import DBT_PROJECT_DIR

pytestmark = pytest.mark.slow

UNABLE = "Unable to do partial parsing"


def _parse(tmp_path, warehouse: str, target) -> str:
    """``dbt parse`` into ``target`` (seeded from the project target, as dagster-dbt does); its log."""
    project_target = tmp_path / "project_target"
    if (project_target / PARTIAL_PARSE).exists() and not (target / PARTIAL_PARSE).exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(project_target / PARTIAL_PARSE, target / PARTIAL_PARSE)
    env = {**os.environ, "CQI_WAREHOUSE": str(tmp_path / warehouse), "DBT_TARGET_PATH": str(project_target),
           "DBT_LOG_PATH": str(target)}
    subprocess.run([DBT_EXECUTABLE, "parse", "--target-path", str(target)], cwd=DBT_PROJECT_DIR, env=env,
                   check=True, capture_output=True)
    return (target / "dbt.log").read_text(encoding="utf-8")


def test_an_invocation_after_one_in_the_same_environment_parses_partially(tmp_path, monkeypatch):
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "project_target"))
    first = tmp_path / "a"
    _parse(tmp_path, "elsewhere.duckdb", first)            # the project target's file: another profile
    keep_partial_parse(first)
    assert UNABLE in _parse(tmp_path, "warehouse.duckdb", tmp_path / "b")   # seeded from another profile
    keep_partial_parse(tmp_path / "b")
    assert UNABLE not in _parse(tmp_path, "warehouse.duckdb", tmp_path / "c")
    assert (tmp_path / "project_target" / PARTIAL_PARSE).read_bytes() == (tmp_path / "b" / PARTIAL_PARSE).read_bytes()


def test_the_dbt_resource_starts_no_version_process_and_builds_no_adapter(monkeypatch):
    from importlib import metadata

    import dagster_dbt.core.resource as resource

    def refuse(*args, **kwargs):
        raise AssertionError(f"subprocess before the invocation: {args}")

    monkeypatch.setattr(resource, "check_output", refuse)
    dbt = dbt_resource()
    assert str(dbt._cli_version) == metadata.version("dbt-core")
    assert dbt._cli_version.major < 2          # dbt Core, not Fusion: dagster-dbt would build an adapter
    assert dbt._initialize_dbt_core_adapter(["build"]) is None
