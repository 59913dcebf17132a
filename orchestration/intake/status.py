"""A site's submissions and their states, read from the receipts.

Receipts are plain files, so ``cqi status`` never needs the warehouse and
never waits for a running pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path


def site_receipts(receipts_dir: Path, site_id: str) -> list[dict]:
    folder = receipts_dir / site_id
    if not folder.is_dir():
        return []
    receipts = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")]
    return sorted(receipts, key=lambda r: r["received_at"])


def receipt_for(receipts_dir: Path, site_id: str, checksum: str) -> dict | None:
    matches = [r for r in site_receipts(receipts_dir, site_id) if r["file_checksum"] == checksum]
    return matches[-1] if matches else None
