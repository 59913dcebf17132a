"""Abstractor worklists: each site's open queries as files it can work through.

``<worklists>/<site>/queries.csv``, ``queries.xlsx`` and ``queries.html``:
open and reopened queries, grouped by case (cases with a blocking query
first), blocking before warning within a case; site-period checks
(missingness, distribution, timeliness) come last under their period. The
HTML page is self-contained (inline style, no scripts) and opens with the
site's scorecard across periods.

The files are written atomically and are what ``cqi queries`` reads, so an
abstractor's look at the list never waits for the warehouse's writer.

Cells leave the pipeline for spreadsheet programs: text starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return would run as a formula
(CSV injection), so CSV cells get a leading apostrophe and XLSX cells are
written as text with formula parsing off.
"""

from __future__ import annotations

import csv
import functools
import io
from pathlib import Path

import duckdb
import pandas as pd

from ..registry import Registry

COLUMNS = ["query_id", "severity", "case_id", "period", "field", "label", "category", "rule_id", "rule_version",
           "observed", "expected", "message", "status", "opened_at", "times_reopened"]
SCORECARD_COLUMNS = ["period", "status", "trend", "cases", "completeness", "open_queries", "open_blocking_queries",
                     "conformance_open", "completeness_open", "plausibility_open", "timeliness_open",
                     "overridden_queries", "days_late"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SITES_PER_TASK = 10     # worklists made by one forked worker at a time

WORKLIST_SQL = f"""
select {", ".join(COLUMNS)} from (
    select *, min(case severity when 'blocking' then 0 else 1 end) over (partition by site_id, case_id) as case_rank
    from quality.queries where site_id = ? and status in ('open', 'reopened')
)
order by case_id is null, case_rank, case_id, period, severity = 'blocking' desc, field, rule_id
"""


def neutralise(value):
    """A cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _atomic_bytes(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in frame.itertuples(index=False):
        writer.writerow(["" if pd.isna(v) else neutralise(str(v)) for v in row])
    return buffer.getvalue().encode("utf-8")


def _xlsx_bytes(frame: pd.DataFrame, scorecard: pd.DataFrame) -> bytes:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False, "strings_to_numbers": False})
    bold = book.add_format({"bold": True})
    for name, table in (("Queries", frame), ("Scorecard", scorecard)):
        sheet = book.add_worksheet(name)
        for col, header in enumerate(table.columns):
            sheet.write_string(0, col, str(header), bold)
        for r, row in enumerate(table.itertuples(index=False), start=1):
            for col, value in enumerate(row):
                if value is None or (not isinstance(value, str) and pd.isna(value)):
                    continue
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    sheet.write_number(r, col, value)
                else:
                    sheet.write_string(r, col, str(value))
        sheet.freeze_panes(1, 0)
    book.close()
    return buffer.getvalue()


@functools.cache
def _html_template():
    """The page template, compiled once per process (compiling it took longer than rendering it, per site)."""
    import jinja2

    return jinja2.Environment(autoescape=True).from_string(HTML_TEMPLATE)


def _html(site_id: str, display_name: str, frame: pd.DataFrame, scorecard: pd.DataFrame) -> str:
    groups: list[tuple[str, list[dict]]] = []
    for row in frame.to_dict("records"):
        title = f"Case {row['case_id']}" if isinstance(row["case_id"], str) else f"Period {row['period']} (whole site-period)"
        if not groups or groups[-1][0] != title:
            groups.append((title, []))
        groups[-1][1].append(row)
    return _html_template().render(
        site_id=site_id, display_name=display_name, groups=groups, total=len(frame),
        blocking=int((frame["severity"] == "blocking").sum()) if len(frame) else 0,
        scorecard=scorecard.to_dict("records"))


HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Data queries: {{ site_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f4f4f4}.chip{padding:.1rem .5rem;border-radius:.7rem;font-weight:600}
.green{background:#d9f2d9}.yellow{background:#fff2b3}.red{background:#f8c9c9}
.blocking{color:#a00;font-weight:600}.warning{color:#8a6d00}h2{margin-top:2rem;font-size:1.1rem}
code{font-size:.85rem}
</style></head><body>
<h1>Data queries for {{ display_name }} ({{ site_id }})</h1>
<p>{{ total }} open {{ "query" if total == 1 else "queries" }}, {{ blocking }} blocking. Blocking queries keep a
site-period out of the comparisons while they exceed the threshold; fix the value in your abstraction tool and send
the period again, or ask the coordinating centre to confirm a value that is correct.</p>
<h2>Scorecard</h2>
<table><tr><th>Period</th><th>Grade</th><th>Trend</th><th>Cases</th><th>Completeness</th><th>Open queries</th>
<th>Blocking</th><th>Conformance</th><th>Completeness</th><th>Plausibility</th><th>Timeliness</th><th>Overridden</th></tr>
{% for s in scorecard %}<tr><td>{{ s.period }}</td><td><span class="chip {{ s.status }}">{{ s.status }}</span></td>
<td>{{ s.trend }}</td><td>{{ s.cases }}</td><td>{{ "%.1f%%"|format(100 * s.completeness) }}</td>
<td>{{ s.open_queries }}</td><td>{{ s.open_blocking_queries }}</td><td>{{ s.conformance_open }}</td>
<td>{{ s.completeness_open }}</td><td>{{ s.plausibility_open }}</td><td>{{ s.timeliness_open }}</td>
<td>{{ s.overridden_queries }}</td></tr>
{% else %}<tr><td colspan="12">No data received yet.</td></tr>{% endfor %}</table>
{% for title, rows in groups %}<h2>{{ title }}</h2>
<table><tr><th>Severity</th><th>Field</th><th>Value</th><th>Message</th><th>Query</th></tr>
{% for q in rows %}<tr><td class="{{ q.severity }}">{{ q.severity }}</td><td>{{ q.label }}</td>
<td><code>{{ q.observed if q.observed is string else "" }}</code></td><td>{{ q.message }}</td>
<td><code>{{ q.query_id }}</code>{% if q.status == "reopened" %} (reopened){% endif %}</td></tr>
{% endfor %}</table>
{% else %}<p>No open queries. Thank you.</p>{% endfor %}
</body></html>
"""


WORKLIST_FILES = ("queries.csv", "queries.xlsx", "queries.html")


def worklist_missing(folder: Path, site_id: str) -> bool:
    """True when one of the site's worklist files is not there."""
    return not all((folder / site_id / name).is_file() for name in WORKLIST_FILES)


def write_worklists(con: duckdb.DuckDBPyConnection, registry: Registry, folder: Path,
                    sites: set[str] | None = None, workers: int | None = None) -> list[Path]:
    """Write every roster site's worklist (CSV, XLSX, HTML), or those of ``sites`` only; return the CSV paths.

    The queries are read here, one site at a time; the files are made by ``workers`` forked processes
    (``publish.workers``: the default is the publication's), since making them is Python work per cell
    (about 40 ms a site) while reading them takes 5 ms.
    """
    from ..publish.workers import forked_map

    has_scorecards = con.execute("select count(*) from information_schema.tables where table_schema = 'quality' "
                                 "and table_name = 'scorecards'").fetchone()[0] > 0
    due = []
    for site in registry.sites:
        if sites is not None and site.site_id not in sites:
            continue
        frame = con.execute(WORKLIST_SQL, [site.site_id]).df()
        scorecard = (con.execute(f"select {', '.join(SCORECARD_COLUMNS)} from quality.scorecards "
                                 "where site_id = ? order by period", [site.site_id]).df()
                     if has_scorecards else pd.DataFrame(columns=SCORECARD_COLUMNS))
        frame["opened_at"] = frame["opened_at"].astype(str)
        due.append((site.site_id, site.display_name, frame, scorecard))

    def write(part: list[tuple]) -> list[Path]:
        written = []
        for site_id, display_name, frame, scorecard in part:
            target = folder / site_id
            target.mkdir(parents=True, exist_ok=True)
            _atomic_bytes(target / "queries.csv", _csv_bytes(frame))
            _atomic_bytes(target / "queries.xlsx", _xlsx_bytes(frame, scorecard))
            _atomic_bytes(target / "queries.html", _html(site_id, display_name, frame, scorecard).encode("utf-8"))
            written.append(target / "queries.csv")
        return written

    parts = [due[i:i + SITES_PER_TASK] for i in range(0, len(due), SITES_PER_TASK)]
    return [path for written in forked_map(write, parts, workers) for path in written]


def read_worklist(folder: Path, site_id: str) -> pd.DataFrame | None:
    """A site's worklist as written (None when none has been written yet)."""
    path = folder / site_id / "queries.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False)
