"""Validating a pandas batch with the Great Expectations suites in ``expectations/``.

GX is not the production path: the SQL checks (``findings.py``) are, because
they run inside DuckDB over a million rows in seconds, and because GX's SQL
datasource on DuckDB fetches rows after closing its connection (see the trap
in DEVELOPERS.md). This module runs the committed suites over a pandas frame
of the current rows so a test can prove GX and SQL report the same failures,
and so the coordinating centre can cross-check a batch by hand.

``import great_expectations`` costs seconds: it happens inside the function.
"""

from __future__ import annotations

import pandas as pd

ROW_KEY = "_row_key"


def gx_failures(frame: pd.DataFrame, suites: list[dict], id_column: str = "case_id",
                site_column: str = "site_id") -> set[tuple[str, str, str, str]]:
    """(site, case id, field, rule id) of every row failing an expectation of ``suites``."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("cqi_cases").add_dataframe_asset("current_rows")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    failures: set[tuple[str, str, str, str]] = set()
    for document in suites:
        suite = gx.ExpectationSuite(**{k: v for k, v in document.items() if k in ("name", "expectations", "meta",
                                                                                "notes")})
        result = batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                      "unexpected_index_column_names": [site_column, id_column]})
        for item in result.results:
            meta = item.expectation_config.meta or {}
            if "rule_id" not in meta:
                continue
            if item.exception_info and item.exception_info.get("raised_exception"):
                raise RuntimeError(f"{meta['rule_id']}: {item.exception_info.get('exception_message')}")
            for unexpected in item.result.get("unexpected_index_list") or []:
                failures.add((unexpected[site_column], unexpected[id_column], meta["field"], meta["rule_id"]))
    return failures


def covered_rule_ids(suites: list[dict]) -> set[str]:
    return {e["meta"]["rule_id"] for s in suites for e in s["expectations"] if "rule_id" in e.get("meta", {})}
