"""Override requests: how the coordinating centre confirms a value without opening the warehouse.

DuckDB allows one writing process, and a pipeline run may hold the
warehouse for minutes. ``cqi override`` therefore never opens it: it writes
a small JSON request into ``<data>/overrides/`` (atomically: a ``.partial``
file renamed into place), and the quality asset applies every pending
request at the start of its next run, inside the run queue that already
serialises writers. Applied requests move to ``overrides/applied/``,
refused ones to ``overrides/refused/`` with the reason added, so the folder
is also the audit trail of who asked for what.

An override is keyed by query id *and* the observed value it confirms: when
the site later sends a different value for the same case and field, the
override does not cover it and the query reopens.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

REQUEST_PATTERN = "*.json"
QUERY_ID_PATTERN = re.compile(r"^Q-[0-9A-F]{16}$")


@dataclass(frozen=True)
class OverrideRequest:
    query_id: str
    observed: str            # the value the coordinating centre confirms ('' when the value is missing)
    reason: str
    author: str
    requested_at: str
    site_id: str = ""


def overrides_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "overrides"


def write_request(folder: Path, request: OverrideRequest) -> Path:
    """Write ``request`` atomically; return its path."""
    if not QUERY_ID_PATTERN.match(request.query_id):
        raise ValueError(f"{request.query_id!r} is not a query id (they look like Q-0123456789ABCDEF)")
    if not request.reason.strip() or not request.author.strip():
        raise ValueError("an override needs a reason and an author")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    target = folder / f"{stamp}-{request.query_id}.json"
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(asdict(request), indent=2), encoding="utf-8")
    partial.replace(target)
    return target


def new_request(query_id: str, observed: str | None, reason: str, author: str, site_id: str = "") -> OverrideRequest:
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    return OverrideRequest(query_id, observed or "", reason.strip(), author.strip(), now, site_id)


def pending_requests(folder: Path) -> list[tuple[Path, OverrideRequest | None, str]]:
    """Pending request files, oldest first, each parsed (or None with the parse problem)."""
    found = []
    for path in sorted(p for p in folder.glob(REQUEST_PATTERN) if p.is_file()) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append((path, OverrideRequest(**data), ""))
        except (ValueError, TypeError) as exc:
            found.append((path, None, f"unreadable request: {exc}"))
    return found


def settle(path: Path, outcome: str, note: str = "") -> Path:
    """Move a request to ``applied/`` or ``refused/`` (with the reason), so it is applied once."""
    target_folder = path.parent / outcome
    target_folder.mkdir(parents=True, exist_ok=True)
    target = target_folder / path.name
    if note:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        data = data if isinstance(data, dict) else {"content": text}
        data["refused_because"] = note
        target.write_text(json.dumps(data, indent=2), encoding="utf-8")
        path.unlink()
    else:
        path.replace(target)
    return target
