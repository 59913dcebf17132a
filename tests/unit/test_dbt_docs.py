"""The staging documentation of the case table stays generated from the dictionary."""

from orchestration.registry.dbt_docs import TARGET, render
from support import demo_registry


def test_the_committed_case_column_docs_match_the_dictionary():
    assert TARGET.read_text(encoding="utf-8") == render(demo_registry()), (
        "run: .venv/bin/python -m orchestration.registry.dbt_docs")


def test_every_warehouse_column_is_documented_and_no_identifier_is_named():
    registry = demo_registry()
    text = render(registry)
    for column in registry.warehouse_columns:
        assert f"name: {column.name}\n" in text
    for variable in registry.direct_identifiers:
        assert f"name: {variable.name}\n" not in text
