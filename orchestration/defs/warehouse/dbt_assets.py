"""The dbt project as Dagster assets; dbt data tests become asset checks (unit tests: unit_tests.py).

The manifest is prepared lazily: ``dbt parse`` runs when it is missing (a
fresh clone) or older than a file of the dbt project, and is reused after that.
"""


import hashlib
import os
import shutil
import subprocess
import sys
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from ...memory import freeze_survivors, release_freed_memory
from .dbt_in_process import dbt_in_this_process
from ...settings import DBT_PROJECT_DIR


class CqiDbtTranslator(DagsterDbtTranslator):
    """dbt models join the ``warehouse`` group; sources keep ``<schema>/<table>`` keys."""

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        return spec if unique_id.startswith("source.") else spec.replace_attributes(group_name="warehouse")


# dbt is installed beside this interpreter; a shell need not have the venv active.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


def _project_files() -> list[Path]:
    return sorted([DBT_PROJECT_DIR / "dbt_project.yml",
                   *(p for folder in ("models", "macros", "tests", "seeds")
                     for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file())])


def _manifest_is_stale(manifest: Path) -> bool:
    """Missing, or older than a file of the dbt project (an edited model must not run from an old manifest)."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _project_files())


@cache
def dbt_project_code() -> str:
    """A digest of the dbt project's files and dbt's version: what recorded test passes hold for.

    dbt reads it as CQI_DBT_CODE (macros/site_tested.sql): a data test skips
    the sites it passed only under the same code, so an edited test, macro,
    model or seed, or another dbt, tests every row again.
    """
    digest = hashlib.sha256(f"dbt-core {metadata.version('dbt-core')} dbt-duckdb {metadata.version('dbt-duckdb')}"
                            .encode())
    for path in _project_files():
        digest.update(f"\0{path.relative_to(DBT_PROJECT_DIR)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    if _manifest_is_stale(Path(project.manifest_path)):
        subprocess.run([DBT_EXECUTABLE, "parse", "--quiet"], cwd=DBT_PROJECT_DIR, check=True)
    return project


class CqiDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without three costs paid by every invocation.

    Before starting dbt, ``DbtCliResource.cli`` ran ``dbt --version`` in a
    subprocess (1.5 s) and built a dbt adapter inside the Dagster process,
    loading every macro (2.0 s). The adapter serves only
    ``fetch_row_counts`` and ``fetch_column_metadata``, which these assets do
    not call; the version is that of the dbt-core package installed beside
    this interpreter (``DBT_EXECUTABLE`` is its script). Together about 7 s
    of every cycle, whatever its size. Third, dbt itself runs in this
    process rather than a new one (dbt_in_process.py).
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None

    def cli(self, args, **kwargs):
        """dagster-dbt's invocation, with dbt run in this process (dbt_in_process.py says why).

        dbt sees the project's code digest (``dbt_project_code``): its data
        tests then skip the sites they already passed (macros/site_tested.sql).
        """
        os.environ["CQI_DBT_CODE"] = dbt_project_code()
        with dbt_in_this_process():
            return super().cli(args, **kwargs)


def dbt_resource() -> DbtCliResource:
    return CqiDbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE)


PARTIAL_PARSE = "partial_parse.msgpack"


def keep_partial_parse(invocation_target: Path) -> None:
    """Make an invocation's parse state the one the next invocation starts from.

    dagster-dbt gives each invocation its own target folder and seeds it with
    the project target's ``partial_parse.msgpack``. dbt only reuses that file
    when it was written under the same profile, and the profile includes the
    warehouse path: a file from ``dbt parse`` in another environment (a test,
    another data folder) made every later invocation parse the whole project
    again (about 1.1 s each, twice a cycle). Each invocation writes a file
    valid for its own environment; it is copied back here (atomically: the
    next invocation may start as soon as this one ends).
    """
    written = Path(invocation_target) / PARTIAL_PARSE
    if not written.exists():
        return
    target = Path(os.environ.get("DBT_TARGET_PATH", "target"))
    target = target if target.is_absolute() else DBT_PROJECT_DIR / target
    target.mkdir(parents=True, exist_ok=True)
    temporary = target / f".{PARTIAL_PARSE}.{os.getpid()}"
    shutil.copyfile(written, temporary)
    os.replace(temporary, target / PARTIAL_PARSE)


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # The run's earlier steps (the risk-model fit above all) freed memory this
    # process still holds; dbt's DuckDB buffers must not come on top of it.
    release_freed_memory()
    freeze_survivors()      # what is alive now outlives dbt: its collections need not walk it
    invocation = dbt.cli(DBT_BUILD_ARGS, context=context)
    yield from invocation.stream()
    keep_partial_parse(invocation.target_path)


AFTER_RISK_MODELS = "tag:after_risk_models"
# Unit tests run as their own asset checks (unit_tests.py), once, after the models.
DBT_BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


@dbt_assets(manifest=dbt_project().manifest_path, project=dbt_project(), exclude=AFTER_RISK_MODELS,
            dagster_dbt_translator=CqiDbtTranslator(), pool="duckdb_writer")
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build and test staging and the intermediate models the risk models are fitted on."""
    yield from _build(context, dbt)


@dbt_assets(manifest=dbt_project().manifest_path, project=dbt_project(), select=AFTER_RISK_MODELS,
            dagster_dbt_translator=CqiDbtTranslator(), pool="duckdb_writer")
def mart_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Score cases with the stored coefficients and build and test the marts."""
    yield from _build(context, dbt)
