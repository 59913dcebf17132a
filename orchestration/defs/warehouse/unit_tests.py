"""dbt unit tests as blocking Dagster asset checks on the models they test.

dagster-dbt turns dbt data tests into asset checks but skips unit tests
(their events are filtered out; dagster-io/dagster#34080), so a broken piece
of logic would only show in dbt's log. Here each unit test in the manifest
becomes an asset check on its model, named ``unit_<test>``, run by one
``dbt test`` per group of models after they are built. The checks block:
when one fails, nothing downstream of its model is built or published.

``dbt build`` in the dbt assets excludes unit tests (``DBT_BUILD_ARGS``), so
each runs once. dbt needs the models' input relations in the warehouse to
know their columns, which is why these run after the models, not before.

A unit test's outcome depends on code alone: the dbt project's files, the
dbt and DuckDB versions, and the registry (its dictionary gives the input
columns), never on the warehouse's rows. Tests that passed with exactly
that code are not run again on every cycle (a dbt start costs seconds):
their check records the pass with the code fingerprint and the run that
proved it. Any edit to the project runs them again.
"""

import hashlib
import json
import re
from importlib.metadata import version
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, get_asset_key_for_model

from ..resources import CqiResource
from .dbt_assets import dbt_project, mart_models, warehouse_models

CHECK_PREFIX = "unit_"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
PASSED_FILE = "cqi_unit_tests_passed.json"   # in the dbt target folder, beside dbt's own artifacts


def code_fingerprint(project_dir: Path, registry) -> str:
    """Hash of everything a unit test's outcome depends on (see the module docstring)."""
    digest = hashlib.sha256()
    for name in ("dbt-core", "dbt-duckdb", "duckdb"):
        digest.update(f"{name}={version(name)};".encode())
    digest.update(f"registry={registry.id}@{registry.version};".encode())
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml",
             *(p for folder in ("models", "macros", "tests", "seeds") for p in (project_dir / folder).rglob("*"))]
    for path in sorted(p for p in files if p.is_file()):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _passed_before(target: Path) -> dict:
    try:
        return json.loads((target / PASSED_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _record_passes(target: Path, fingerprint: str, passed: list[str], run_id: str) -> None:
    known = _passed_before(target)
    known = known if known.get("fingerprint") == fingerprint else {"fingerprint": fingerprint, "tests": {}}
    known["tests"].update({test: run_id for test in passed})
    target.mkdir(parents=True, exist_ok=True)
    temporary = target / f"{PASSED_FILE}.tmp"
    temporary.write_text(json.dumps(known, indent=1, sort_keys=True))
    temporary.replace(target / PASSED_FILE)


def unit_tests_by_model() -> dict[str, list[tuple[str, str]]]:
    """Model name -> [(unit test name, description)] from the dbt manifest."""
    manifest = json.loads(Path(dbt_project().manifest_path).read_text())
    found: dict[str, list[tuple[str, str]]] = {}
    for node in manifest.get("unit_tests", {}).values():
        found.setdefault(node["model"], []).append((node["name"], node.get("description") or ""))
    return found


def _unit_test_checks(name: str, dbt_assets_def: dg.AssetsDefinition) -> dg.AssetChecksDefinition | None:
    """One multi-asset check for the unit tests of the models ``dbt_assets_def`` builds (None: it has none)."""
    tests = {test: (get_asset_key_for_model([dbt_assets_def], model), description)
             for model, listed in unit_tests_by_model().items()
             for test, description in listed}
    tests = {test: found for test, found in tests.items() if found[0] in dbt_assets_def.keys}
    if not tests:
        return None
    specs = [dg.AssetCheckSpec(name=f"{CHECK_PREFIX}{test}", asset=key, blocking=True,
                               description=f"dbt unit test: {description}".strip())
             for test, (key, description) in sorted(tests.items())]

    @dg.multi_asset_check(specs=specs, name=name, pool="duckdb_writer", can_subset=True,
                          description="Run the dbt unit tests of these models (fixtures in, expected rows out).")
    def run_unit_tests(context: dg.AssetCheckExecutionContext, dbt: DbtCliResource, cqi: CqiResource):
        selected = sorted(test for test, (key, _) in tests.items()
                          if dg.AssetCheckKey(key, f"{CHECK_PREFIX}{test}") in context.selected_asset_check_keys)
        project_dir = Path(dbt.project_dir)
        target = project_dir / "target"
        fingerprint = code_fingerprint(project_dir, cqi.registry)
        before = _passed_before(target)
        proven = before.get("tests", {}) if before.get("fingerprint") == fingerprint else {}
        for test in [t for t in selected if t in proven]:
            yield dg.AssetCheckResult(
                asset_key=tests[test][0], check_name=f"{CHECK_PREFIX}{test}", passed=True,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"status": "pass", "proven_by_run": proven[test], "code_fingerprint": fingerprint[:16],
                          "message": "passed with this exact code in an earlier run; not run again"})
        selected = [t for t in selected if t not in proven]
        if not selected:
            return
        invocation = dbt.cli(["test", "--select", *selected], manifest=dbt_project().manifest_path,
                             raise_on_error=False)
        invocation.wait()
        results = {result["unique_id"].rsplit(".", 1)[-1]: result
                   for result in invocation.get_artifact("run_results.json")["results"]
                   if result["unique_id"].startswith("unit_test.")}
        _record_passes(target, fingerprint, [t for t in selected if (results.get(t) or {}).get("status") == "pass"],
                       context.run.run_id)
        for test in selected:
            result = results.get(test)
            status = result["status"] if result else "not run"
            yield dg.AssetCheckResult(
                asset_key=tests[test][0], check_name=f"{CHECK_PREFIX}{test}", passed=status == "pass",
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"status": status,
                          "message": ANSI_COLOUR.sub("", (result or {}).get("message") or "").strip()})

    return run_unit_tests


UNIT_TEST_CHECKS = [check for check in (_unit_test_checks("warehouse_unit_tests", warehouse_models),
                                        _unit_test_checks("mart_unit_tests", mart_models)) if check]
