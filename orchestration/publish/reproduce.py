"""Rebuilding a past publication from the inputs saved with it.

A release keeps (coordinating centre only) the frames it was built from and
a manifest with the checksum of every file. Rebuilding from those inputs must
give byte-identical files: that is what makes a published number traceable.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..registry import Registry
from .inputs import PublicationInputs
from .packages import build_publication
from .release import INPUTS, file_checksums, read_manifest


def rebuild(release_dir: Path, registry: Registry, target: Path) -> dict[str, str]:
    """Rebuild the release's files under ``target``; return their checksums."""
    inputs = PublicationInputs.load(release_dir / INPUTS)
    stamp = _stamp(release_dir)
    build_publication(inputs, target, registry.name, registry.policy.small_cell_threshold,
                      registry.policy.min_c_statistic, stamp)
    return file_checksums(target)


def _stamp(release_dir: Path) -> str:
    manifest = read_manifest(release_dir)
    return manifest.get("stamp") or ""


def verify(release_dir: Path, registry: Registry) -> list[str]:
    """Differences between a release and its rebuild (empty when identical)."""
    expected = read_manifest(release_dir)["files"]
    with tempfile.TemporaryDirectory(prefix="cqi-rebuild-") as folder:
        rebuilt = rebuild(release_dir, registry, Path(folder))
    problems = [f"{name}: differs" for name in sorted(expected) if rebuilt.get(name) != expected[name]]
    problems += [f"{name}: not in the release" for name in sorted(set(rebuilt) - set(expected))]
    return problems
