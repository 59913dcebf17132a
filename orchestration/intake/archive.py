"""The content-addressed archive: every received file, unchanged, first.

A file is copied to ``archive/<sha256>`` (with a JSON sidecar of metadata)
before anything parses it, so a parser bug can never lose what a site sent.
The same bytes received twice map to the same archive entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

CHUNK = 1 << 20


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
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def archived_path(archive_dir: Path, checksum: str, original_name: str) -> Path:
    suffix = "".join(Path(original_name).suffixes[-1:]).lower()
    return archive_dir / checksum[:2] / f"{checksum}{suffix}"


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
    """Copy ``source`` into the archive (atomically) and return its entry."""
    checksum = sha256_of(source)
    original_name = original_name or source.name
    target = archived_path(archive_dir, checksum, original_name)
    sidecar = target.with_name(target.name + ".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
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
