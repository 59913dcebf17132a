"""The README's analyst section stays true: its tables exist and its example queries run through ``cqi sql``."""

from __future__ import annotations

import re

import duckdb
import pandas as pd
import pytest

from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

SECTION = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8") \
    .split("## For analysts: the marts", 1)[1].split("\n## ", 1)[0]
EXAMPLES = [(sql.strip(), [c.strip(" `") for c in columns.split(",")])
            for sql, columns in re.findall(r"```sql\n(.*?)```\s*\nColumns: ([^\n]*)", SECTION, re.S)]


def test_the_section_has_three_example_questions_each_with_its_columns():
    assert len(EXAMPLES) == 3
    assert SECTION.count("```sql") == 3, "every SQL block is followed by its 'Columns:' line"


def test_every_table_the_section_names_is_in_the_analyst_copy(deployment):
    named = set(re.findall(r"`(\w+\.\w+)`", SECTION.split("Three questions", 1)[0]))
    assert {"marts.mart_site_results", "marts.fct_case_risk"} <= named
    with duckdb.connect(str(deployment.data_dir / "analyst" / "latest" / "analyst.duckdb"), read_only=True) as con:
        present = {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
    assert named <= present, f"the README names tables the analyst copy lacks: {sorted(named - present)}"


@pytest.mark.parametrize("number", range(3))
def test_the_example_query_runs_with_cqi_sql_and_returns_its_columns(deployment, tmp_path, number):
    sql, columns = EXAMPLES[number]
    out = tmp_path / "answer.csv"
    done = deployment.cqi("sql", sql, "--out", str(out))
    assert done.returncode == 0, done.stderr
    answer = pd.read_csv(out)
    assert list(answer.columns) == columns
    assert len(answer) > 0, "on the demo collaborative every example has an answer"
    assert answer["site_id"].notna().all()
