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


def archive_file(source: Path, site_id: str, archive_dir: Path) -> ArchivedFile:
    """Copy ``source`` into the archive (atomically) and return its entry."""
    checksum = sha256_of(source)
    suffix = "".join(Path(source.name).suffixes[-1:]).lower()
    target = archive_dir / checksum[:2] / f"{checksum}{suffix}"
    sidecar = target.with_name(target.name + ".json")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    received = ArchivedFile(
        checksum=checksum, site_id=site_id, original_name=source.name,
        size_bytes=target.stat().st_size,
        received_at=datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds"),
        path=target,
    )
    # One sidecar line per receipt of these bytes: the history of who sent them when.
    with open(sidecar, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(received.metadata()) + "\n")
    return received
