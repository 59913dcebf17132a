"""The landing zone: one folder per site, the folder being the site's upload account.

A file is taken from ``landing/<site>/`` only after it has been archived and
processed; then it is removed from landing (the archive keeps the bytes). A
folder that is not a roster site is left alone and reported.

Only regular files are taken. A symbolic link (to a file or to a folder), a
site folder that is itself a link, a sub-folder, a pipe or a device is never
read: it is left where it is, logged, and listed by ``refused_entries`` so the
coordinating centre can remove it. Hidden files (``.name``) and partial
uploads (``*.partial``) are skipped silently: upload tools write them while a
transfer is going. Any other name, however odd (spaces, accents, ``..``,
line breaks, 255 characters), is taken; its name is sanitised wherever it is
used in a path (``archive.safe_name``).
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LandedFile:
    site_id: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.site_id}/{self.path.name}:{self.size}:{self.mtime_ns}"


@dataclass(frozen=True)
class RefusedEntry:
    site_id: str
    name: str
    reason: str


def _skipped_silently(name: str) -> bool:
    return name.startswith(".") or name.endswith(".partial")


def _entries(landing: Path, site_ids: list[str]):
    """(site, path, lstat or None, refusal reason or None) for each landing entry."""
    for site_id in site_ids:
        folder = landing / site_id
        if folder.is_symlink():
            yield site_id, folder, None, "the site folder is a symbolic link: it is never followed"
            continue
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _skipped_silently(path.name):
                continue
            try:
                info = path.lstat()
            except OSError:
                continue  # gone since listed
            if stat.S_ISLNK(info.st_mode):
                yield site_id, path, None, "a symbolic link: links are never followed, the file it points to is not read"
            elif not stat.S_ISREG(info.st_mode):
                yield site_id, path, None, "not a regular file (a folder, pipe or device)"
            else:
                yield site_id, path, info, None


def landed_files(landing: Path, site_ids: list[str]) -> list[LandedFile]:
    """Regular files waiting in site folders, oldest first (the order they count as received)."""
    found = []
    for site_id, path, info, refusal in _entries(landing, site_ids):
        if refusal:
            log.warning("landing %s/%r refused: %s", site_id, path.name, refusal)
            continue
        found.append(LandedFile(site_id, path, info.st_size, info.st_mtime_ns))
    return sorted(found, key=lambda f: (f.mtime_ns, f.site_id, f.path.name))


def refused_entries(landing: Path, site_ids: list[str]) -> list[RefusedEntry]:
    """Entries of site folders that are never taken (links, folders, devices), with why."""
    return [RefusedEntry(site_id, path.name, refusal)
            for site_id, path, _, refusal in _entries(landing, site_ids) if refusal]
