"""Random-intercept fits kept between builds of ``mart_site_results``.

Why: the maximum-likelihood fit behind reliability adjustment is most of
the time ``site_results`` takes (3 of 4 seconds at 80 sites x 32
measure-periods), and the mart is rebuilt whole every cycle. When one site
resubmits one quarter, only that quarter's groups have new numbers: the
other groups' fits are read back instead of maximised again.

Safe by construction: an entry's key is the digest of every number the fit
reads (``stats.reliability.fit_key``), and the file is ignored unless it was
written by the same fitting code (a checksum of ``stats/reliability.py``).
A fit read back is the fit that would have been computed, to the last bit
(floats are stored as JSON's shortest round-tripping repr). Only the entries
used by the last build are written, so the file does not grow.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from ..stats.reliability import RandomInterceptFit

FILE_NAME = "reliability_fits.json"


def _code_checksum() -> str:
    """The fitting code's own bytes (``stats/reliability.py``; ``stats`` exports a function of the same name)."""
    return hashlib.sha256(Path(sys.modules[RandomInterceptFit.__module__].__file__).read_bytes()).hexdigest()


class StoredFits(MutableMapping):
    """A ``fit_key -> RandomInterceptFit`` mapping loaded from ``path``; ``save()`` writes back the entries used."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._code = _code_checksum()
        self._stored: dict[str, RandomInterceptFit] = {}
        self._used: dict[str, RandomInterceptFit] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("code") == self._code:
                self._stored = {k: RandomInterceptFit(float(mu), float(sigma), float(ll), bool(ok), int(n))
                                for k, (mu, sigma, ll, ok, n) in data["fits"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass   # missing or unreadable: every group is fitted

    @classmethod
    def beside_warehouse(cls, session) -> StoredFits:
        """The store in ``.cache/`` beside the DuckDB file ``session`` is connected to (a dbt Python model's session)."""
        path = session.execute("select path from duckdb_databases() where database_name = current_database()"
                               ).fetchone()[0]
        return cls(Path(path).parent / ".cache" / FILE_NAME)

    @property
    def reused(self) -> int:
        return sum(1 for k in self._used if k in self._stored)

    def __getitem__(self, key: str) -> RandomInterceptFit:
        fit = self._used.get(key) or self._stored[key]
        self._used[key] = fit
        return fit

    def __setitem__(self, key: str, fit: RandomInterceptFit) -> None:
        self._used[key] = fit

    def __delitem__(self, key: str) -> None:
        self._used.pop(key, None)
        self._stored.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter({**self._stored, **self._used})

    def __len__(self) -> int:
        return len({**self._stored, **self._used})

    def save(self) -> None:
        """Write the entries this build used (atomically: a reader never sees half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fits = {k: [f.mu, f.sigma, f.log_likelihood, f.converged, f.n_sites] for k, f in self._used.items()}
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps({"code": self._code, "fits": fits}), encoding="utf-8")
        os.replace(temporary, self.path)
