"""Each site's CUSUM and VLAD charts, kept from one publication to the next while its cases are unchanged.

When one site resubmits a quarter, the period's random-intercept variance
moves and every site's comparison is new: every package is rewritten. But a
site's CUSUM and VLAD depend only on its own cases and their expected
probabilities, and for every other site those are what the last publication
charted. Reading a site's cases and running its CUSUM is most of the cost of
its package, so the charts (and the overview's signal rows) are kept here,
under ``publish/.cache/monitoring/``, and a package reuses them when the key
matches.

The key holds everything the charts are drawn from: the site, the
fingerprint of its case rows (orchestration/publish/inputs.py: row count and
sum of row hashes, so a changed outcome, date or expected probability
changes it), the period, the measures' labels, and a checksum of the code
that draws them. A rebuild from a release's inputs (``cqi publish --verify``)
never uses the cache: it recomputes everything.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from ..reports.site_report import MonitoringCharts

# the code the charts and signal rows come from
_SOURCES = ("reports/charts.py", "reports/series.py", "reports/site_report.py", "stats/spc.py",
            "publish/packages.py", "publish/monitoring_cache.py")


@cache
def code_checksum() -> str:
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()


@dataclass
class SiteMonitoring:
    """A site's charts per measure (None: no case to chart) and its overview signal rows per measure."""

    charts: dict[str, MonitoringCharts | None]
    signals: dict[str, list[dict]]


class MonitoringCache:
    def __init__(self, folder: Path):
        self.folder = folder

    def key(self, site_id: str, fingerprint, period: str, labels: list[tuple[str, str]]) -> str:
        text = json.dumps([site_id, fingerprint, str(period), labels, code_checksum()], sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json.gz"

    def load(self, key: str) -> SiteMonitoring | None:
        try:
            saved = json.loads(gzip.decompress(self._path(key).read_bytes()))
        except (OSError, ValueError, EOFError):
            return None          # not kept, or unreadable: drawn again
        charts = {m: MonitoringCharts(c["period"], c["cusum"], c["vlad"], tuple(c["worse"]), tuple(c["better"]))
                  if c is not None else None for m, c in saved["charts"].items()}
        return SiteMonitoring(charts, saved["signals"])

    def save(self, key: str, entry: SiteMonitoring) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"charts": {m: asdict(c) if c is not None else None for m, c in entry.charts.items()},
                "signals": entry.signals}
        temporary = self.folder / f".{key}.{os.getpid()}"
        temporary.write_bytes(gzip.compress(json.dumps(data).encode("utf-8"), compresslevel=1))
        os.replace(temporary, self._path(key))

    def keep_only(self, keys) -> None:
        """Forget every entry but ``keys`` (those of the publication just released)."""
        wanted = {self._path(k).name for k in keys}
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.name not in wanted:
                    path.unlink(missing_ok=True)
