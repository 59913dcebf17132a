"""Reading what a publication is built from, as plain data frames.

Everything a package shows comes from these frames; they are also saved with
the release (coordinating centre only), so a past publication can be rebuilt
from its own inputs and compared with its manifest's checksums.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import duckdb
import pandas as pd


@dataclass
class PublicationInputs:
    period: str
    results: pd.DataFrame          # marts.mart_site_results, periods up to ``period``
    funnel_curves: pd.DataFrame    # marts.mart_funnel_limits
    cases: pd.DataFrame            # marts.fct_case_risk, periods up to ``period``
    quality: pd.DataFrame          # site_id, period, status, completeness, open_queries, blocking_open
    models: pd.DataFrame           # current models with their quality
    sites: pd.DataFrame            # site_id, display_name, blinded_code
    measures: pd.DataFrame         # measure_id, label, direction
    submissions: pd.DataFrame      # current submissions: site_id, period, submission_id, file_checksum

    FRAMES = ("results", "funnel_curves", "cases", "quality", "models", "sites", "measures", "submissions")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.FRAMES:
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "period.txt").write_text(self.period, encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "PublicationInputs":
        frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in cls.FRAMES}
        return cls(period=(folder / "period.txt").read_text(encoding="utf-8").strip(), **frames)


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                       [schema, table]).fetchone()[0] > 0


def _large_frame(con: duckdb.DuckDBPyConnection, sql: str, parameters: list) -> pd.DataFrame:
    """The frame ``.df()`` gives, read through Arrow: DuckDB's ``.df()`` holds the whole materialised
    result beside the frame it builds (19 GiB peak for the 40M scored cases of a national registry);
    through Arrow the peak is the sort's memory limit plus the Arrow table (6.7 GiB), in half the time."""
    result = con.execute(sql, parameters).arrow()
    table = result.read_all() if hasattr(result, "read_all") else result
    frame = table.to_pandas(date_as_object=False)
    for column in frame.columns:   # .df() gives timestamps and dates in microseconds
        if pd.api.types.is_datetime64_dtype(frame[column]):
            frame[column] = frame[column].astype("datetime64[us]")
    return frame


def latest_period(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("select max(period) from marts.mart_site_results where is_included").fetchone()
    return row[0] if row else None


def read_inputs(con: duckdb.DuckDBPyConnection, period: str) -> PublicationInputs:
    open_queries = ("select site_id, period, count(*) filter (where status in ('open', 'reopened')) as open_queries, "
                    "count(*) filter (where status in ('open', 'reopened') and severity = 'blocking') as blocking_open "
                    "from quality.queries group by all") if _has_table(con, "quality", "queries") else (
                    "select site_id, period, count(*) as open_queries, "
                    "count(*) filter (where severity = 'blocking') as blocking_open from quality.findings group by all")
    quality = con.execute(
        f"select s.site_id, s.period, s.status, s.completeness, coalesce(q.open_queries, 0) as open_queries, "
        f"coalesce(q.blocking_open, 0) as blocking_open from quality.site_period_status s "
        f"left join ({open_queries}) q using (site_id, period) where s.period <= ? order by 1, 2", [period]).df()
    return PublicationInputs(
        period=period,
        results=con.execute("select * from marts.mart_site_results where period <= ? "
                            "order by site_id, measure_id, period", [period]).df(),
        funnel_curves=con.execute("select * from marts.mart_funnel_limits where period <= ? "
                                  "order by period, measure_id, expected", [period]).df(),
        cases=_large_frame(con, "select site_id, case_id, period, operation_date, measure_id, is_event, "
                                "expected_probability from marts.fct_case_risk where period <= ? "
                                "order by site_id, measure_id, operation_date, case_id", [period]),
        quality=quality,
        models=con.execute("select measure_id, model_version, cases, events, c_statistic, calibration_intercept, "
                           "calibration_slope, hosmer_lemeshow_p, brier_score, risk_adjusted "
                           "from models.model_versions where is_current order by measure_id").df(),
        sites=con.execute("select site_id, display_name, blinded_code from registry.sites order by site_id").df(),
        measures=con.execute("select measure_id, label, direction from registry.measures order by measure_id").df(),
        submissions=con.execute(
            "select c.site_id, c.period, c.submission_id, s.file_checksum, s.original_name "
            "from intake.current_submission_periods c join intake.submissions s using (submission_id) "
            "where c.period <= ? order by 1, 2", [period]).df(),
    )
