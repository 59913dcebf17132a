"""The landing zone: one folder per site, the folder being the site's upload account.

A file is taken from ``landing/<site>/`` only after it has been archived and
processed; then it is removed from landing (the archive keeps the bytes). A
folder that is not a roster site is left alone and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LandedFile:
    site_id: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.site_id}/{self.path.name}:{self.size}:{self.mtime_ns}"


def landed_files(landing: Path, site_ids: list[str]) -> list[LandedFile]:
    """Files waiting in site folders, oldest first (the order they count as received)."""
    found = []
    for site_id in site_ids:
        folder = landing / site_id
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") or path.name.endswith(".partial") or not path.is_file() or path.is_symlink():
                continue
            stat = path.stat()
            found.append(LandedFile(site_id, path, stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: (f.mtime_ns, f.site_id, f.path.name))


def unknown_site_folders(landing: Path, site_ids: list[str]) -> list[str]:
    if not landing.is_dir():
        return []
    return sorted(p.name for p in landing.iterdir() if p.is_dir() and p.name not in site_ids)
