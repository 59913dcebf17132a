"""Receptions: a file noticed in a site's landing folder, before it is loaded.

Each arrival of a file is one reception and one Dagster partition of the
intake asset (dynamic partitions named ``submissions``). Its key is derived
from the site, the arrival time, the size and the content checksum, so the
same landing state always yields the same keys: a sensor tick that is retried
after a crash asks for the same partitions and the same run, which Dagster
recognises (run keys) instead of launching it twice. The same bytes sent
again later are a new reception whose load step records a duplicate.

A small JSON manifest per reception (``receptions/<key>.json``) tells the
intake run which landing file the key stands for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .archive import sha256_of
from .landing import LandedFile, landed_files


@dataclass(frozen=True)
class Reception:
    key: str
    site_id: str
    original_name: str
    landing_path: str
    size_bytes: int
    mtime_ns: int
    checksum: str

    @classmethod
    def of(cls, landed: LandedFile) -> "Reception":
        checksum = sha256_of(landed.path)
        stamp = datetime.fromtimestamp(landed.mtime_ns / 1e9, tz=timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        key = f"{landed.site_id}.{stamp}.{checksum[:12]}"
        return cls(key, landed.site_id, landed.path.name, str(landed.path), landed.size, landed.mtime_ns, checksum)


def manifest_path(folder: Path, key: str) -> Path:
    return folder / f"{key}.json"


def write_manifest(folder: Path, reception: Reception) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = manifest_path(folder, reception.key)
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(reception), indent=2), encoding="utf-8")
    partial.replace(target)
    return target


def read_manifest(folder: Path, key: str) -> Reception:
    return Reception(**json.loads(manifest_path(folder, key).read_text(encoding="utf-8")))


def plan_receptions(landing: Path, site_ids: list[str], manifests: Path, known: set[str]) -> list[Reception]:
    """Receptions for landing files whose keys are not in ``known``, oldest first, with manifests."""
    fresh = []
    for landed in landed_files(landing, site_ids):
        reception = Reception.of(landed)
        if reception.key in known:
            continue
        write_manifest(manifests, reception)
        fresh.append(reception)
    return fresh
