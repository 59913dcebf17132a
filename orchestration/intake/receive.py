"""Receiving files: archive, read, map, cast, pseudonymise, load, receipt.

Each file is judged here on its own; the files of a run are then loaded
together (``batch.py``): the database writes of a batch of submissions happen
in one transaction, so a crash never leaves half a submission visible. The
archive copy is made before anything else, so a crash never loses what the
site sent.

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

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..registry import Registry
from ..settings import Paths
from .archive import ArchivedFile, RefusedFile, archive_file, find_archived, safe_name, sha256_of
from .batch import Batch, StagedFile, insert_rows
from .headers import map_headers
from .read import (CsvPlan, Limits, TextTable, UnreadableFile, csv_text_table, plan_csv, quoted, read_csv_group,
                   read_text_table)
from .receipts import Receipt
from .receptions import Reception

BATCH_BYTES = 256 << 20   # bytes of files per batch (about a million cases): bounds memory at any scale
CSV_SUFFIXES = (".csv", ".txt", ".tsv", "")
PERIOD_IN_NAME = re.compile(r"(\d{4}(?:Q[1-4]|M(?:0[1-9]|1[0-2])))")
SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
log = logging.getLogger(__name__)


class Rejection(Exception):
    """The whole file is refused; the message is the receipt's reason."""


def submission_id_for(site_id: str, checksum: str) -> str:
    return f"{site_id}-{checksum[:16]}"


def _already_received(con: duckdb.DuckDBPyConnection, submission_ids: list[str]) -> set[str]:
    """Those of ``submission_ids`` recorded before, in one query: a query per file took 1.8 s of the
    M benchmark's full intake (640 files)."""
    return {row[0] for row in con.execute(
        "select submission_id from intake.submissions where list_contains(?, submission_id)",
        [submission_ids]).fetchall()}


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


def _check_size(registry: Registry, archived: ArchivedFile) -> None:
    if archived.size_bytes > registry.policy.max_file_bytes:
        raise Rejection(f"the file is {archived.size_bytes} bytes, over the limit of "
                        f"{registry.policy.max_file_bytes} bytes; split it by period")


def _judge(registry: Registry, text: TextTable, receipt: Receipt) -> dict[str, str]:
    """Fill the receipt from the file's text table and accept the file as a whole, or raise ``Rejection``.

    Returns where each variable is in the text table (variable -> c<i>).
    """
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
    return {variable: f"c{text.headers.index(header)}" for header, variable in headers.mapping.items()}


def _staged(index: int, archived: ArchivedFile, receipt: Receipt, text: TextTable) -> StagedFile:
    declared = PERIOD_IN_NAME.search(archived.original_name)
    return StagedFile(index=index, archived=archived, receipt=receipt,
                      declared_period=declared.group(1) if declared else None,
                      decimal_comma=text.delimiter == ";", width=len(text.headers),
                      truncated_row=text.truncated_row,
                      truncated_fields=text.truncated_fields if text.truncated_row else None)


def _prepare(con, registry: Registry, archived: ArchivedFile, receipt: Receipt, index: int,
             batch: Batch) -> None:
    """Read the file on its own, judge it and add its rows to ``batch``; raises ``Rejection``."""
    _check_size(registry, archived)
    try:
        text = read_text_table(con, archived.path, limits=Limits.of(registry.policy))
    except UnreadableFile as exc:
        raise Rejection(str(exc)) from exc
    batch.add(_staged(index, archived, receipt, text), text.table, _judge(registry, text, receipt))


def _plan(registry: Registry, archived: ArchivedFile) -> CsvPlan | None:
    """A plain UTF-8 CSV is inspected now and read later with others like it; None: read it alone."""
    _check_size(registry, archived)
    if archived.path.suffix.lower() not in CSV_SUFFIXES:
        return None
    try:
        return plan_csv(archived.path, Limits.of(registry.policy), workdir=None)
    except UnreadableFile as exc:
        raise Rejection(str(exc)) from exc


@dataclass
class _Deferred:
    index: int
    archived: ArchivedFile
    receipt: Receipt
    plan: CsvPlan


def _read_deferred(con, registry: Registry, batch: Batch, deferred: list[_Deferred]) -> None:
    """Read the deferred CSVs, one DuckDB scan per dialect and header, and add them to the batch.

    If a scan fails, some file in it cannot be parsed: its files are read
    one at a time, which finds the file and the precise reason.
    """
    limits = Limits.of(registry.policy)
    groups: dict[tuple, list[_Deferred]] = {}
    for item in deferred:
        groups.setdefault((item.plan.delimiter, tuple(item.plan.headers)), []).append(item)
    for items in groups.values():
        try:
            found = read_csv_group(con, [item.plan for item in items], "group_text", limits)
        except duckdb.Error:
            for item in items:
                _guarded(item.receipt, lambda item=item: _prepare(con, registry, item.archived, item.receipt,
                                                                 item.index, batch))
            continue
        accepted: list[tuple[StagedFile, int]] = []
        columns: dict[str, str] = {}
        for item in items:
            first, rows = found.get(str(item.plan.path), (0, 0))

            def judge(item=item, rows=rows):
                try:
                    text = csv_text_table(item.plan, "group_text", rows, limits)
                except UnreadableFile as exc:
                    raise Rejection(str(exc)) from exc
                return _staged(item.index, item.archived, item.receipt, text), _judge(registry, text, item.receipt)

            judged = _guarded(item.receipt, judge)
            if judged:
                accepted.append((judged[0], first))
                columns = judged[1]
        if accepted:
            batch.add_group(accepted, "group_text", columns)
        con.execute("drop table if exists group_text")


def _record(con, receipts: list[tuple[Receipt, Path]]) -> None:
    """Ledger rows for the receipts, in order: a later sequence supersedes (one writer, in a transaction)."""
    processed = [(r, path) for r, path in receipts if r.status != "duplicate"]
    insert_rows(con, "ledger_rows", {
        "position": "integer", "submission_id": "varchar", "site_id": "varchar", "original_name": "varchar",
        "file_checksum": "varchar", "size_bytes": "bigint", "received_at": "timestamp", "status": "varchar",
        "reason": "varchar", "rows_received": "bigint", "rows_loaded": "bigint", "rows_rejected": "bigint",
        "periods": "varchar[]", "receipt_path": "varchar"},
        [[i, r.submission_id, r.site_id, r.original_name, r.file_checksum, r.size_bytes, r.received_at, r.status,
          r.reason, r.rows_received, r.rows_loaded, r.rows_rejected, r.periods, str(path)]
         for i, (r, path) in enumerate(processed)])
    con.execute("insert into intake.submissions select submission_id, "
                "(select coalesce(max(sequence), 0) from intake.submissions) + position + 1, site_id, original_name, "
                "file_checksum, size_bytes, received_at, status, reason, rows_received, rows_loaded, rows_rejected, "
                "periods, receipt_path from ledger_rows")
    insert_rows(con, "reception_rows", {"submission_id": "varchar", "original_name": "varchar",
                                        "received_at": "timestamp", "outcome": "varchar"},
                [[r.submission_id, r.original_name, r.received_at,
                  "duplicate" if r.status == "duplicate" else "processed"] for r, _ in receipts])
    con.execute("insert into intake.receptions select * from reception_rows")
    con.execute("drop table ledger_rows")
    con.execute("drop table reception_rows")


def _reject(receipt: Receipt, reason: str) -> None:
    receipt.status, receipt.reason = "rejected", reason
    receipt.rows_loaded, receipt.rows_rejected, receipt.problems = 0, receipt.rows_received, []


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


def archive_reception(paths: Paths, reception: Reception) -> ArchivedFile:
    """Archive the reception's landing file (unless an earlier attempt did) and remove it from landing."""
    _checked_site(reception.site_id)
    source = Path(reception.landing_path)
    if source.is_symlink():
        raise RefusedFile(f"{shown_name(reception.original_name)!r} in {reception.site_id}'s landing folder became a "
                          "symbolic link after it arrived: links are never followed, and the file was not read")
    if source.is_file() and sha256_of(source) == reception.checksum:
        archived = archive_file(source, reception.site_id, paths.archive, reception.original_name)
        source.unlink(missing_ok=True)
        return archived
    archived = find_archived(paths.archive, reception)
    if archived is None:
        raise FileNotFoundError(
            f"{reception.original_name} from {reception.site_id} left the landing folder before it was "
            f"archived (checksum {reception.checksum}); ask the site to send it again")
    return archived


def receive_reception(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths,
                      reception: Reception, secret: bytes) -> Receipt:
    """Archive the reception's landing file, then load it."""
    return load_archived(con, registry, paths, archive_reception(paths, reception), secret)


def load_archived(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths, archived: ArchivedFile,
                  secret: bytes) -> Receipt:
    """Load one archived file (or record it as a duplicate); always return a receipt."""
    return load_archived_files(con, registry, paths, [archived], secret)[0]


def load_archived_files(con: duckdb.DuckDBPyConnection, registry: Registry, paths: Paths,
                        archived_files: list[ArchivedFile], secret: bytes,
                        max_bytes: int = BATCH_BYTES) -> list[Receipt]:
    """Load archived files in the order given, in batches of about ``max_bytes``; a receipt for each.

    Each batch is one SQL pass and one transaction (``batch.py``). A file
    received twice (before, or earlier in the same call) is a duplicate.
    """
    receipts: list[Receipt] = []
    pending: list[tuple[ArchivedFile, Receipt]] = []
    deferred: list[_Deferred] = []
    batch = Batch(con, registry, secret)
    seen: set[str] = set()
    received = _already_received(con, [submission_id_for(a.site_id, a.checksum) for a in archived_files])
    size = 0
    for archived in archived_files:
        receipt = _new_receipt(archived, "accepted")
        index = len(pending)
        if receipt.submission_id in seen or receipt.submission_id in received:
            receipt.status = "duplicate"
            receipt.reason = "the same bytes were received before from this site"
        else:
            seen.add(receipt.submission_id)
            plan = _guarded(receipt, lambda: _plan(registry, archived))
            if plan is not None and all(item.archived.path != archived.path for item in deferred):
                deferred.append(_Deferred(index, archived, receipt, plan))
            elif receipt.status != "rejected":
                _guarded(receipt, lambda: _prepare(con, registry, archived, receipt, index, batch))
        pending.append((archived, receipt))
        size += archived.size_bytes
        if size >= max_bytes:
            _read_deferred(con, registry, batch, deferred)
            receipts += _flush(con, registry, paths, pending, batch, secret)
            pending, deferred, batch, size = [], [], Batch(con, registry, secret), 0
    if pending:
        _read_deferred(con, registry, batch, deferred)
        receipts += _flush(con, registry, paths, pending, batch, secret)
    else:
        batch.drop()
    return receipts


def _guarded(receipt: Receipt, step):
    """Run a step of receiving one file; what the file holds never raises: it rejects the file.

    Returns the step's result, or None when the file was rejected.
    """
    try:
        try:
            return step()
        except Rejection:
            raise
        except Exception as exc:  # a file must never stop the intake of the others
            log.exception("intake of %s from %s failed", receipt.original_name, receipt.site_id)
            raise Rejection(f"the file could not be processed ({type(exc).__name__}); the coordinating "
                            "centre has been told and will contact the site") from exc
    except Rejection as exc:
        _reject(receipt, str(exc))
        return None


def _flush(con, registry: Registry, paths: Paths, pending: list[tuple[ArchivedFile, Receipt]], batch: Batch,
           secret: bytes) -> list[Receipt]:
    """Stage the batch, write receipts, and commit every pending submission in one transaction."""
    if batch.files:
        staged_files = list(batch.files)
        try:
            for staged, names in batch.stage():
                named = ", ".join(n if SITE_ID.match(n) else quoted(n) for n in names)
                _reject(staged.receipt, f"rows name another site ({named}); a file sent from site "
                                        f"{staged.archived.site_id}'s folder may only hold that site's cases")
        except Exception as exc:
            batch.drop()
            if len(staged_files) == 1:
                log.exception("intake of a batch of %d file(s) failed", len(pending))
                for staged in (s for s in staged_files if s.receipt.status != "rejected"):
                    _reject(staged.receipt, f"the file could not be processed ({type(exc).__name__}); the "
                                            "coordinating centre has been told and will contact the site")
                batch.files = []
            else:  # find the file at fault: load them one at a time, in order
                log.warning("a batch of %d files failed; loading them one at a time", len(pending))
                receipts = []
                for archived, receipt in pending:
                    if receipt.status in ("duplicate", "rejected"):
                        receipts += _flush(con, registry, paths, [(archived, receipt)], Batch(con, registry, secret),
                                           secret)
                    else:
                        receipts += load_archived_files(con, registry, paths, [archived], secret)
                return receipts
    written = {receipt.submission_id + receipt.status: receipt.write(paths.receipts) for _, receipt in pending}
    for archived, receipt in pending:
        if receipt.status == "rejected":
            _quarantine(archived, receipt, paths)
    column_list = ", ".join(f'"{c.name}"' for c in registry.warehouse_columns)
    con.execute("begin transaction")
    try:
        if batch.files:
            batch.insert(column_list)
        _record(con, [(receipt, written[receipt.submission_id + receipt.status]) for _, receipt in pending])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        batch.drop()
    return [receipt for _, receipt in pending]
