"""The content-addressed archive: every received file, unchanged, first.

A file is copied to ``archive/<sha256>`` (with a JSON sidecar of metadata)
before anything parses it, so a parser bug can never lose what a site sent.
The same bytes received twice map to the same archive entry.

A site chooses its file names, so no name it sends is ever used as a path as
it stands: archive and quarantine names are built from the checksum and a
sanitised form of the name (``safe_name``), and files are opened without
following symbolic links (``open_no_follow``), so a link dropped in a landing
folder can never make the archive read, say, ``/etc/passwd``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

CHUNK = 1 << 20
MAX_NAME_CHARS = 120
UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")


class RefusedFile(OSError):
    """A landing entry that is never read (a symbolic link, a device, a folder)."""


def open_no_follow(path: Path):
    """Open ``path`` for reading in binary, refusing a symbolic link or anything but a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if os.path.islink(path):
            raise RefusedFile(f"{os.path.basename(path)!r} is a symbolic link: links are never followed") from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RefusedFile(f"{os.path.basename(path)!r} is not a regular file")
    return os.fdopen(fd, "rb")


def safe_name(original_name: str) -> str:
    """A file-name form of ``original_name`` that is safe in any folder.

    Only letters, digits, ``.``, ``_`` and ``-`` survive; no leading dot (so
    never ``..``); at most MAX_NAME_CHARS characters, keeping the suffix.
    """
    base = original_name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = UNSAFE_CHARACTERS.sub("_", base).lstrip(".") or "file"
    if len(cleaned) > MAX_NAME_CHARS:
        stem, dot, suffix = cleaned.rpartition(".")
        suffix = f".{suffix}" if dot and len(suffix) <= 8 else ""
        cleaned = cleaned[: MAX_NAME_CHARS - len(suffix)] + suffix
    return cleaned


def safe_suffix(original_name: str) -> str:
    """The name's last suffix, lower-cased, if it is a plain one (``.csv``), else empty."""
    suffix = Path(safe_name(original_name)).suffix.lower()
    return suffix if SUFFIX.match(suffix) else ""


@dataclass(frozen=True)
class ArchivedFile:
    checksum: str
    site_id: str
    original_name: str
    size_bytes: int
    received_at: str
    path: Path

    def metadata(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open_no_follow(path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def archived_path(archive_dir: Path, checksum: str, original_name: str) -> Path:
    return archive_dir / checksum[:2] / f"{checksum}{safe_suffix(original_name)}"


def find_archived(archive_dir: Path, reception) -> ArchivedFile | None:
    """The archive entry of a reception an earlier, interrupted attempt archived."""
    target = archived_path(archive_dir, reception.checksum, reception.original_name)
    sidecar = target.with_name(target.name + ".json")
    if not target.is_file() or not sidecar.is_file():
        return None
    for line in reversed(sidecar.read_text(encoding="utf-8").splitlines()):
        entry = json.loads(line)
        if entry["site_id"] == reception.site_id and entry["original_name"] == reception.original_name:
            return ArchivedFile(**{**entry, "path": target})
    return None


def archive_file(source: Path, site_id: str, archive_dir: Path, original_name: str | None = None) -> ArchivedFile:
    """Copy ``source`` into the archive (atomically) and return its entry.

    One pass reads the file (never through a symbolic link), hashes it and
    writes a partial copy, which is then renamed to its checksum name; the
    same bytes already archived keep their first copy.
    """
    original_name = original_name or source.name
    archive_dir.mkdir(parents=True, exist_ok=True)
    partial = archive_dir / f".incoming-{uuid.uuid4().hex}.partial"
    digest = hashlib.sha256()
    try:
        with open_no_follow(source) as handle, open(partial, "wb") as out:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        checksum = digest.hexdigest()
        target = archived_path(archive_dir, checksum, original_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            partial.unlink()
        else:
            os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    sidecar = target.with_name(target.name + ".json")
    received = ArchivedFile(
        checksum=checksum, site_id=site_id, original_name=original_name,
        size_bytes=target.stat().st_size,
        received_at=datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds"),
        path=target,
    )
    # One sidecar line per receipt of these bytes: the history of who sent them when.
    with open(sidecar, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(received.metadata()) + "\n")
    return received
