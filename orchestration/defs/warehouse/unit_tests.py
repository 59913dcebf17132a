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
"""

import json
import re
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, get_asset_key_for_model

from .dbt_assets import dbt_project, mart_models, warehouse_models

CHECK_PREFIX = "unit_"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


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
    def run_unit_tests(context: dg.AssetCheckExecutionContext, dbt: DbtCliResource):
        selected = sorted(test for test, (key, _) in tests.items()
                          if dg.AssetCheckKey(key, f"{CHECK_PREFIX}{test}") in context.selected_asset_check_keys)
        invocation = dbt.cli(["test", "--select", *selected], manifest=dbt_project().manifest_path,
                             raise_on_error=False)
        invocation.wait()
        results = {result["unique_id"].rsplit(".", 1)[-1]: result
                   for result in invocation.get_artifact("run_results.json")["results"]
                   if result["unique_id"].startswith("unit_test.")}
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
