"""docs/reliability.md lists the bad-input corpus exactly as the tests define it."""

from __future__ import annotations

import re

from reliability.corpus_table import DOCUMENT, corpus, render, table_in


def test_the_document_lists_every_case_of_the_bad_input_corpus_with_its_outcome():
    cases = corpus()
    table = table_in(DOCUMENT.read_text(encoding="utf-8"))
    listed = re.findall(r"^\| \d+ \| `([^`]+)` \| ([^|]+) \|", table, flags=re.MULTILINE)
    assert [name for name, _ in listed] == [case.name for case in cases]
    for (name, outcome), case in zip(listed, cases):
        assert outcome.strip().startswith(case.status.replace("_", " ")), name
    assert table == render(cases), "regenerate it: .venv/bin/python tests/reliability/corpus_table.py --write"
