"""What the privacy checks learnt of each published file's content, kept from one publication to the next.

When one site resubmits a quarter, most files of the new publication are
byte for byte those of the last one (every site's own case table, most
reports and data-quality tables: 320 of 484 files, 87% of the bytes at
state scale). Reading and splitting them into words again was most of the
privacy checks' time. What the checks need of a file's content is kept
here, under ``publish/.cache/privacy/``, keyed by its SHA-256:

- the names found in it (site codes and display names, identifier column
  names), as positions in the list of names looked for;
- its 64-hex tokens (the only strings that can be pseudonymised patient keys);
- the count columns holding a count from 1 to the threshold (package tables);
- the 64-bit hashes of all its tokens, so that the file is checked against
  the case numbers *of this publication*: a resubmission adds case numbers,
  and a file that did not change can still hold one of them.

So a kept content gives exactly the verdict a new scan would: names, count
columns and tokens depend on the bytes alone, and the case numbers and
patient keys are looked up afresh. A case-number match sends the file to a
full scan (which names the tokens in the problem). Everything is keyed by a
context (the names looked for in their order, the threshold and the
checking code): with another context nothing kept is used.

The token hashes are written by the workers that scanned the files, one
``part-*.npy`` each; ``index.json`` says where each content's hashes are.
After a publication the index holds the contents of its files only, and
parts no entry refers to are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INDEX = "index.json"


def context_digest(names: list[tuple[str, str]], threshold: int | None) -> str:
    """What makes kept contents comparable: the checking code, the names looked for (in order), the threshold."""
    digest = hashlib.sha256((Path(__file__).parent / "privacy.py").read_bytes())
    digest.update(json.dumps([names, threshold]).encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True)
class KnownContent:
    """What a scan found in one content (see the module docstring)."""

    names: tuple[int, ...]
    hex_tokens: tuple[str, ...]
    count_columns: tuple[str, ...] | None      # None: not counted (the file was not a package table)
    token_hashes: np.ndarray


class ContentMemory:
    """The kept contents of one folder and context; ``remember`` writes a worker's new ones, ``keep`` the index."""

    def __init__(self, folder: Path, context: str):
        self.folder = folder
        self.context = context
        self.entries: dict[str, dict] = {}
        try:
            stored = json.loads((folder / INDEX).read_text())
            if stored.get("context") == context:
                self.entries = stored["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            self.entries = {}
        self._parts: dict[str, np.ndarray] = {}

    def known(self, sha: str) -> KnownContent | None:
        entry = self.entries.get(sha)
        if entry is None:
            return None
        try:
            part = self._parts.get(entry["part"])
            if part is None:
                part = self._parts[entry["part"]] = np.load(self.folder / entry["part"], mmap_mode="r")
            hashes = np.asarray(part[entry["start"]:entry["end"]])
        except (OSError, ValueError, KeyError):
            return None
        if len(hashes) != entry["end"] - entry["start"]:
            return None
        return KnownContent(tuple(entry["names"]), tuple(entry["hex"]),
                            None if entry["counts"] is None else tuple(entry["counts"]), hashes)

    def remember(self, contents: dict[str, KnownContent]) -> dict[str, dict]:
        """Write ``contents``' token hashes as one part; their index entries."""
        if not contents:
            return {}
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.npy"
        arrays = list(contents.values())
        ends = np.cumsum([len(c.token_hashes) for c in arrays]).tolist()
        temporary = self.folder / f".{name}"
        with open(temporary, "wb") as out:
            np.save(out, np.concatenate([c.token_hashes for c in arrays]).astype(np.uint64))
        os.replace(temporary, self.folder / name)
        return {sha: {"part": name, "start": end - len(c.token_hashes), "end": end, "names": list(c.names),
                      "hex": list(c.hex_tokens), "counts": None if c.count_columns is None else list(c.count_columns)}
                for (sha, c), end in zip(contents.items(), ends)}

    def keep(self, entries: dict[str, dict]) -> None:
        """Make ``entries`` the index (atomically), then remove the parts it does not refer to."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{INDEX}.{os.getpid()}"
        temporary.write_text(json.dumps({"context": self.context, "entries": entries}))
        os.replace(temporary, self.folder / INDEX)
        used = {entry["part"] for entry in entries.values()}
        for part in self.folder.glob("part-*.npy"):
            if part.name not in used:
                part.unlink(missing_ok=True)


CASE_HASHES = "cases"


def site_case_hashes(memory_dir: Path, fingerprints: dict[str, list], read_site) -> dict[str, np.ndarray]:
    """Each site's case-number hashes, read (``read_site(site) -> hashes``) only for sites not kept.

    The case index of the privacy checks holds every site's case numbers,
    hashed: a million at state scale, ten million nationally, read from the
    publication's case file and hashed again at every publication though
    one site changed. A site's hashes are kept under ``cases/`` by the
    fingerprint of its rows in the case file (row count and row-hash sum,
    inputs.py) and the checking code: the same rows give the same case
    numbers. After a publication only its sites' entries are kept.
    """
    folder = memory_dir / CASE_HASHES
    folder.mkdir(parents=True, exist_ok=True)
    code = hashlib.sha256((Path(__file__).parent / "privacy.py").read_bytes()).hexdigest()
    wanted, hashes = {}, {}
    for site, fingerprint in fingerprints.items():
        key = hashlib.sha256(json.dumps([code, site, fingerprint]).encode("utf-8")).hexdigest()
        wanted[key] = site
        path = folder / f"{key}.npy"
        try:
            hashes[site] = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            hashes[site] = np.asarray(read_site(site), dtype=np.uint64)
            temporary = folder / f".{key}.{uuid.uuid4().hex}.npy"
            np.save(temporary, hashes[site], allow_pickle=False)
            os.replace(temporary, path)
    for stale in folder.glob("*.npy"):
        if stale.stem not in wanted:
            stale.unlink(missing_ok=True)
    return hashes
