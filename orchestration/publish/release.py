"""Atomic publication: build in staging, check, then switch one symlink.

A period's publication is built under ``publish/.staging/``; only when every
package is written (and the privacy checks passed) is the folder moved to
``publish/releases/<period>/<release>/`` and the link ``publish/<period>``
switched to it with one atomic rename. A run that fails or is killed midway
leaves the previous release in place and readable; ``publish/latest`` points
at the newest period. Old releases are kept: each has its manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from .writers import sha256_file, write_text

MANIFEST = "manifest.json"
INPUTS = "inputs"   # the frames the release was built from (coordinating centre only)


def staging_folder(publish_dir: Path, period: str, run_id: str) -> Path:
    folder = publish_dir / ".staging" / f"{period}-{run_id}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def code_version(project_root: Path) -> str:
    """The git commit of the code, when it runs from a checkout; else the package version."""
    explicit = os.environ.get("CQI_CODE_VERSION")
    if explicit:
        return explicit
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root, capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_root,
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import version

    return f"cqi-warehouse {version('cqi-warehouse')}"


def file_checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every published file under ``folder`` (the inputs snapshot excluded)."""
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST and INPUTS not in p.relative_to(folder).parts}


def write_manifest(folder: Path, details: dict) -> Path:
    manifest = {**details, "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "files": file_checksums(folder)}
    return write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str), folder / MANIFEST)


def _switch_link(link: Path, target: str) -> None:
    temporary = link.with_name(f".{link.name}.switch")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(target, temporary)
    os.replace(temporary, link)


def release(publish_dir: Path, staged: Path, period: str, release_id: str) -> Path:
    """Move a complete staged publication into place and switch ``<period>`` and ``latest`` to it."""
    target = publish_dir / "releases" / period / release_id
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staged, target)
    _switch_link(publish_dir / period, os.path.relpath(target, publish_dir))
    periods = sorted(p.name for p in (publish_dir / "releases").iterdir() if p.is_dir())
    _switch_link(publish_dir / "latest", periods[-1])
    return target


def current_release(publish_dir: Path, period: str) -> Path | None:
    link = publish_dir / period
    return link.resolve() if link.is_symlink() else None


def read_manifest(release_dir: Path) -> dict:
    return json.loads((release_dir / MANIFEST).read_text(encoding="utf-8"))
