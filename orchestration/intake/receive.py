"""Receiving one file: archive, read, map, cast, pseudonymise, load, receipt.

The database writes for one submission happen in one transaction, so a crash
never leaves half a submission visible; the archive copy is made before
anything else, so a crash never loses what the site sent.

Resubmission rule (documented in docs/decisions/resubmissions.md): a
submission replaces, for its site, every period its rows fall in. The current
view of a site-period is the latest accepted submission that covers it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb

from ..registry import Registry
from ..settings import Paths
from .archive import ArchivedFile, archive_file, find_archived, sha256_of
from .cast import cast_findings_sql, period_expression, typed_columns
from .headers import map_headers
from .read import UnreadableFile, read_text_table
from .receipts import Receipt
from .receptions import Reception

PERIOD_IN_NAME = re.compile(r"(\d{4}(?:Q[1-4]|M(?:0[1-9]|1[0-2])))")
MAX_LISTED_PROBLEMS = 10_000


class Rejection(Exception):
    """The whole file is refused; the message is the receipt's reason."""


def submission_id_for(site_id: str, checksum: str) -> str:
    return f"{site_id}-{checksum[:16]}"


def _already_received(con: duckdb.DuckDBPyConnection, submission_id: str) -> bool:
    return con.execute("select count(*) from intake.submissions where submission_id = ?",
                       [submission_id]).fetchone()[0] > 0


def _new_receipt(archived: ArchivedFile, status: str) -> Receipt:
    return Receipt(
        submission_id=submission_id_for(archived.site_id, archived.checksum), site_id=archived.site_id,
        original_name=archived.original_name, file_checksum=archived.checksum,
        size_bytes=archived.size_bytes, received_at=archived.received_at, status=status,
    )


def _load(con, registry: Registry, archived: ArchivedFile, receipt: Receipt, secret: bytes) -> None:
    """Read, check and stage the file's rows in temp table ``incoming_typed``."""
    if archived.size_bytes > registry.policy.max_file_bytes:
        raise Rejection(f"the file is {archived.size_bytes} bytes, over the limit of "
                        f"{registry.policy.max_file_bytes} bytes; split it by period")
    try:
        text = read_text_table(con, archived.path)
    except UnreadableFile as exc:
        raise Rejection(str(exc)) from exc
    receipt.file_format, receipt.encoding, receipt.delimiter = text.file_format, text.encoding, text.delimiter
    receipt.rows_received = text.rows
    headers = map_headers(text.headers, registry)
    receipt.unknown_columns = headers.unknown
    receipt.missing_optional_columns = headers.missing_optional
    if headers.duplicated:
        raise Rejection(f"columns appear twice: {', '.join(headers.duplicated)}")
    if headers.missing_required:
        raise Rejection(f"required columns are missing: {', '.join(headers.missing_required)}")
    if text.rows == 0:
        raise Rejection("the file has a header but no data rows")
    columns = {variable: f"c{text.headers.index(header)}" for header, variable in headers.mapping.items()}

    site_column = columns["site_id"]
    others = con.execute(
        f"select distinct trim({site_column}) from {text.table} "
        f"where nullif(trim({site_column}), '') is not null and trim({site_column}) <> ? order by 1",
        [archived.site_id]).fetchall()
    if others:
        named = ", ".join(r[0] for r in others[:5])
        raise Rejection(f"rows name another site ({named}); a file sent from site {archived.site_id}'s "
                        f"folder may only hold that site's cases")

    typed = typed_columns(registry, columns, secret)
    declared = PERIOD_IN_NAME.search(archived.original_name)
    op_period = period_expression("operation_date", registry.calendar.period_length)
    fallback = f"'{declared.group(1)}'" if declared else "null"
    selects = ", ".join(f'{sql} as "{name}"' for name, sql in typed.items())
    # A pure projection: DuckDB's optimizer gains nothing here but spends
    # about half a second per file on the wide CASE expressions.
    con.execute("pragma disable_optimizer")
    try:
        con.execute(
            f"create or replace temp table incoming_typed as "
            f"select *, coalesce({op_period}, {fallback}) as period from "
            f"(select row_number, {selects} from {text.table})")
    finally:
        con.execute("pragma enable_optimizer")
    con.execute(
        f"create or replace temp table incoming_findings as "
        f"{cast_findings_sql(registry, columns, text.table)} "
        f"union all select row_number, 'case_id', null, 'is missing: a row without a case number cannot be loaded' "
        f"from incoming_typed where case_id is null "
        f"union all select row_number, 'operation_date', null, 'gives no reporting period: the row cannot be loaded' "
        f"from incoming_typed where case_id is not null and period is null")


def _commit(con, registry: Registry, archived: ArchivedFile, receipt: Receipt) -> None:
    """Insert the staged rows, findings and ledger entry in one transaction."""
    column_list = ", ".join(f'"{c.name}"' for c in registry.warehouse_columns)
    loadable = "case_id is not null and period is not null"
    receipt.rows_loaded = con.execute(f"select count(*) from incoming_typed where {loadable}").fetchone()[0]
    receipt.rows_rejected = receipt.rows_received - receipt.rows_loaded
    receipt.periods = [r[0] for r in con.execute(
        f"select distinct period from incoming_typed where {loadable} order by 1").fetchall()]
    problems = con.execute(
        "select row_number, field, value, problem from incoming_findings order by row_number, field").fetchall()
    receipt.problems = [dict(row_number=r[0], field=r[1], value=r[2], problem=r[3])
                        for r in problems[:MAX_LISTED_PROBLEMS]]
    receipt.status = "accepted_with_findings" if problems else "accepted"
    con.execute("begin transaction")
    try:
        con.execute(
            f"insert into raw.cases ({column_list}, submission_id, file_checksum, row_number, period) "
            f"select {column_list}, ?, ?, row_number, period from incoming_typed where {loadable}",
            [receipt.submission_id, archived.checksum])
        con.execute("insert into intake.cell_findings select ?, row_number, field, value, problem "
                    "from incoming_findings", [receipt.submission_id])
        _record(con, receipt)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def _record(con, receipt: Receipt) -> None:
    con.execute(
        "insert into intake.submissions values (?, nextval('intake.submission_sequence'), ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?)",
        [receipt.submission_id, receipt.site_id, receipt.original_name, receipt.file_checksum,
         receipt.size_bytes, receipt.received_at, receipt.status, receipt.reason, receipt.rows_received,
         receipt.rows_loaded, receipt.rows_rejected, receipt.periods, None])
    con.execute("insert into intake.receptions values (?, ?, ?, 'processed')",
                [receipt.submission_id, receipt.original_name, receipt.received_at])


def _quarantine(archived: ArchivedFile, receipt: Receipt, paths: Paths) -> None:
    folder = paths.quarantine / archived.site_id
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archived.path, folder / f"{receipt.submission_id}__{Path(archived.original_name).name}")
    (folder / f"{receipt.submission_id}.reason.txt").write_text(receipt.to_text(), encoding="utf-8")


def receive_file(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths, source: Path,
                 site_id: str, secret: bytes) -> Receipt:
    """Archive ``source`` first, then load it; always return a receipt."""
    return load_archived(con, registry, paths, archive_file(source, site_id, paths.archive), secret)


def receive_reception(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths,
                      reception: Reception, secret: bytes) -> Receipt:
    """Archive the reception's landing file (unless an earlier attempt did), remove it, load it."""
    source = Path(reception.landing_path)
    if source.is_file() and sha256_of(source) == reception.checksum:
        archived = archive_file(source, reception.site_id, paths.archive, reception.original_name)
        source.unlink(missing_ok=True)
    else:
        archived = find_archived(paths.archive, reception)
        if archived is None:
            raise FileNotFoundError(
                f"{reception.original_name} from {reception.site_id} left the landing folder before it was "
                f"archived (checksum {reception.checksum}); ask the site to send it again")
    return load_archived(con, registry, paths, archived, secret)


def load_archived(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths, archived: ArchivedFile,
                  secret: bytes) -> Receipt:
    """Load an archived file (or record it as a duplicate); always return a receipt."""
    receipt = _new_receipt(archived, "accepted")
    if _already_received(con, receipt.submission_id):
        receipt.status = "duplicate"
        receipt.reason = "the same bytes were received before from this site"
        con.execute("insert into intake.receptions values (?, ?, ?, 'duplicate')",
                    [receipt.submission_id, receipt.original_name, receipt.received_at])
    else:
        try:
            _load(con, registry, archived, receipt, secret)
            _commit(con, registry, archived, receipt)
        except Rejection as exc:
            receipt.status, receipt.reason = "rejected", str(exc)
            receipt.rows_loaded = 0
            receipt.rows_rejected = receipt.rows_received
            _record(con, receipt)
            _quarantine(archived, receipt, paths)
    receipt_path = receipt.write(paths.receipts)
    if receipt.status != "duplicate":
        con.execute("update intake.submissions set receipt_path = ? where submission_id = ?",
                    [str(receipt_path), receipt.submission_id])
    return receipt
