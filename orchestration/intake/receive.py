"""Receiving one file: archive, read, map, cast, pseudonymise, load, receipt.

The database writes for one submission happen in one transaction, so a crash
never leaves half a submission visible; the archive copy is made before
anything else, so a crash never loses what the site sent.

Resubmission rule (documented in docs/decisions/resubmissions.md): a
submission replaces, for its site, every period its rows fall in. The current
view of a site-period is the latest accepted submission that covers it.

Whatever a site sends, receiving it ends in a receipt: a file that cannot be
read is rejected with the reason, and an unexpected failure while reading or
checking one file rejects that file ("could not be processed") and is logged
for the coordinating centre, so the next file, from any site, is received as
usual. Only a failure of the warehouse itself (while committing) propagates.
Names a site chose are never used as paths as they stand (``safe_name``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
from pathlib import Path

import duckdb

from ..registry import Registry
from ..settings import Paths
from .archive import ArchivedFile, RefusedFile, archive_file, find_archived, safe_name, sha256_of
from .cast import MAX_FINDING_VALUE, cast_findings_sql, clean_text_sql, period_expression, typed_columns
from .headers import map_headers
from .read import Limits, UnreadableFile, quoted, read_text_table
from .receipts import Receipt
from .receptions import Reception

PERIOD_IN_NAME = re.compile(r"(\d{4}(?:Q[1-4]|M(?:0[1-9]|1[0-2])))")
MAX_LISTED_PROBLEMS = 10_000
SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
log = logging.getLogger(__name__)


class Rejection(Exception):
    """The whole file is refused; the message is the receipt's reason."""


def submission_id_for(site_id: str, checksum: str) -> str:
    return f"{site_id}-{checksum[:16]}"


def _already_received(con: duckdb.DuckDBPyConnection, submission_id: str) -> bool:
    return con.execute("select count(*) from intake.submissions where submission_id = ?",
                       [submission_id]).fetchone()[0] > 0


def shown_name(original_name: str) -> str:
    """The file name as recorded and shown: control characters and undecodable bytes escaped."""
    return CONTROL_CHARACTERS.sub(lambda m: f"\\x{ord(m.group()) & 0xff:02x}", original_name)[:255]


def _checked_site(site_id: str) -> str:
    """A site id becomes a folder name (receipts, quarantine): it must be a plain roster id."""
    if not SITE_ID.match(site_id or ""):
        raise ValueError(f"site id {site_id!r} is not a plain roster id (letters, digits, _ and -)")
    return site_id


def _new_receipt(archived: ArchivedFile, status: str) -> Receipt:
    return Receipt(
        submission_id=submission_id_for(archived.site_id, archived.checksum), site_id=archived.site_id,
        original_name=shown_name(archived.original_name), file_checksum=archived.checksum,
        size_bytes=archived.size_bytes, received_at=archived.received_at, status=status,
    )


def _load(con, registry: Registry, archived: ArchivedFile, receipt: Receipt, secret: bytes) -> None:
    """Read, check and stage the file's rows in temp table ``incoming_typed``."""
    if archived.size_bytes > registry.policy.max_file_bytes:
        raise Rejection(f"the file is {archived.size_bytes} bytes, over the limit of "
                        f"{registry.policy.max_file_bytes} bytes; split it by period")
    try:
        text = read_text_table(con, archived.path, limits=Limits.of(registry.policy))
    except UnreadableFile as exc:
        raise Rejection(str(exc)) from exc
    receipt.file_format, receipt.encoding, receipt.delimiter = text.file_format, text.encoding, text.delimiter
    receipt.rows_received = text.rows
    receipt.notes = list(text.notes)
    headers = map_headers(text.headers, registry)
    receipt.unknown_columns = [h if h.strip() else f"(blank header, column {i + 1})"
                               for i, h in enumerate(text.headers) if h in headers.unknown]
    receipt.missing_optional_columns = headers.missing_optional
    if headers.duplicated:
        raise Rejection(f"columns appear twice: {', '.join(quoted(h) for h in headers.duplicated)}")
    if headers.missing_required:
        if not headers.mapping and len(text.headers) == 1:
            raise Rejection("the header line has a single column and names no registry variable: the file's "
                            "delimiter was not recognised; separate values with commas, semicolons, tabs or pipes")
        raise Rejection(f"required columns are missing: {', '.join(headers.missing_required)}")
    if text.rows == 0:
        raise Rejection("the file has a header but no data rows")
    columns = {variable: f"c{text.headers.index(header)}" for header, variable in headers.mapping.items()}
    # Pure projections: DuckDB's optimizer gains nothing here but spends seconds
    # (tens of seconds on 53 guarded CASE expressions) before running them.
    con.execute("pragma disable_optimizer")
    try:
        con.execute(f"create or replace temp table incoming_clean as {clean_text_sql(columns, text.table)}")
    finally:
        con.execute("pragma enable_optimizer")
    text = dataclasses.replace(text, table="incoming_clean")

    site_column = columns["site_id"]
    others = con.execute(
        f"select distinct left({site_column}, 40) from {text.table} "
        f"where {site_column} is not null and {site_column} <> ? order by 1 limit 5",
        [archived.site_id]).fetchall()
    if others:
        named = ", ".join(r[0] if SITE_ID.match(r[0]) else quoted(r[0]) for r in others)
        raise Rejection(f"rows name another site ({named}); a file sent from site {archived.site_id}'s "
                        f"folder may only hold that site's cases")

    decimal_comma = text.delimiter == ";"
    typed = typed_columns(registry, columns, secret, decimal_comma)
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
    cut_off = text.truncated_row or -1
    con.execute(
        f"create or replace temp table incoming_findings as "
        f"select * from ({cast_findings_sql(registry, columns, text.table, decimal_comma)}) "
        f"where row_number <> {cut_off} "
        f"union all select row_number, 'case_id', null, 'is missing: a row without a case number cannot be loaded' "
        f"from incoming_typed where case_id is null "
        f"union all select row_number, 'operation_date', null, 'gives no reporting period: the row cannot be loaded' "
        f"from incoming_typed where case_id is not null and period is null "
        f"union all select row_number, '(row)', left(case_id, {MAX_FINDING_VALUE}), "
        f"'has {text.truncated_fields} of {len(text.headers)} fields and the file ends there: it was cut off, "
        f"so the row was not loaded; send the complete file' from incoming_typed where row_number = {cut_off}")
    if text.truncated_row:
        # Not loaded: its missing fields are an artefact of the cut, not the case.
        con.execute("update incoming_typed set case_id = null where row_number = ?", [text.truncated_row])


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
    shutil.copyfile(archived.path, folder / f"{receipt.submission_id}__{safe_name(archived.original_name)}")
    (folder / f"{receipt.submission_id}.reason.txt").write_text(receipt.to_text(), encoding="utf-8")


def receive_file(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths, source: Path,
                 site_id: str, secret: bytes) -> Receipt:
    """Archive ``source`` first, then load it; always return a receipt.

    ``source`` is never read through a symbolic link (``RefusedFile``); the
    site id must be a plain roster id (it names folders).
    """
    _checked_site(site_id)
    return load_archived(con, registry, paths, archive_file(source, site_id, paths.archive), secret)


def receive_reception(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths,
                      reception: Reception, secret: bytes) -> Receipt:
    """Archive the reception's landing file (unless an earlier attempt did), remove it, load it."""
    _checked_site(reception.site_id)
    source = Path(reception.landing_path)
    if source.is_symlink():
        raise RefusedFile(f"{shown_name(reception.original_name)!r} in {reception.site_id}'s landing folder became a "
                          "symbolic link after it arrived: links are never followed, and the file was not read")
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
            try:
                _load(con, registry, archived, receipt, secret)
            except Rejection:
                raise
            except Exception as exc:  # a file must never stop the intake of the others
                log.exception("intake of %s from %s failed", receipt.original_name, receipt.site_id)
                raise Rejection(f"the file could not be processed ({type(exc).__name__}); the coordinating "
                                "centre has been told and will contact the site") from exc
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
