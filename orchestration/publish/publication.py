"""One period's publication from start to release: what the ``publication`` asset runs.

Read the inputs from the warehouse, build every package and the overview in
a staging folder, save the inputs and the manifest, run the privacy checks
on the folder as it will be released, switch the release in atomically,
then refresh the analyst copy. It lives
here rather than in the asset so that the benchmark (benchmarks/bench_publish.py)
times exactly what a run does, phase by phase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..registry import Registry
from ..settings import PROJECT_ROOT, Paths
from ..warehouse import connect
from .analyst_copy import publish_analyst_copy
from .inputs import CaseFile, PublicationInputs, latest_period, read_inputs
from .monitoring_cache import MonitoringCache
from .packages import build_publication
from .privacy import privacy_problems_by_kind
from .release import INPUTS, code_version, current_release, release, staging_folder, write_manifest
from .timing import Phases


class NothingToPublish(RuntimeError):
    """No site-period has included data, or none in the period asked for."""


class PublicationWithheld(RuntimeError):
    """The staged publication failed a privacy check; nothing was released."""

    def __init__(self, problems: list[str]):
        super().__init__("publication withheld: privacy checks failed")
        self.problems = problems


@dataclass
class Publication:
    period: str
    release: Path
    files: int
    site_packages: int
    phases: Phases = field(default_factory=Phases)


def dictionary_checksum(registry: Registry) -> str:
    from ..intake.archive import sha256_of

    return sha256_of(registry.folder / "dictionary.yaml")


def patient_key_lookup(warehouse: Path) -> Callable[[set[str]], set[str]]:
    """Which of some 64-hex tokens of the published files are pseudonymised patient keys.

    The files hold a few hundred such tokens (checksums, mostly), so they are looked up in
    the warehouse rather than every key (ten million at national scale) loaded and hashed."""
    def lookup(candidates: set[str]) -> set[str]:
        with connect(warehouse, read_only=True) as con:
            return {key for (key,) in con.execute(
                "select distinct patient_key from raw.cases where patient_key in (select unnest(?::varchar[]))",
                [sorted(candidates)]).fetchall()}
    return lookup


def privacy_memory(folders: Paths) -> Path:
    """Where the privacy checks keep what they found in each content (orchestration/publish/privacy_memory.py)."""
    return folders.publish / ".cache" / "privacy"


def previous_cases(publish_dir: Path, period: str) -> CaseFile | None:
    """The case file of the period's current release, else of the latest release: the one a new
    publication takes unchanged sites' files from (their fingerprints decide which)."""
    latest = publish_dir / "latest"
    for found in (current_release(publish_dir, period), latest.resolve() if latest.is_symlink() else None):
        if found is not None and (found / INPUTS).is_dir():
            return CaseFile.in_folder(found / INPUTS)
    return None


def publish_period(registry: Registry, folders: Paths, period: str | None, run_id: str,
                   phases: Phases | None = None) -> Publication:
    """Publish ``period`` (default: the latest with included data); raise if nothing may be released."""
    phases = phases if phases is not None else Phases()
    with phases("read inputs"), connect(folders.warehouse, read_only=True) as con:
        period = period or latest_period(con)
        if period is None:
            raise NothingToPublish("nothing to publish: no site-period has included data")
        if not con.execute("select count(*) from marts.mart_site_results where period = ?", [period]).fetchone()[0]:
            raise NothingToPublish(f"nothing to publish for {period}: no results in that period")
        staged = staging_folder(folders.publish, period, run_id)
        inputs = read_inputs(con, period, staged / INPUTS, previous_cases(folders.publish, period))
    stamp = f"{period} (data version {inputs.models['model_version'].iloc[0].rsplit('.', 1)[-1]})"
    written = build_publication(inputs, staged, registry.name, registry.policy.small_cell_threshold,
                                registry.policy.min_c_statistic, stamp, phases=phases,
                                cache=MonitoringCache(folders.publish / ".cache" / "monitoring"))
    with phases("inputs snapshot"):
        inputs.save(staged / INPUTS)
    with phases("checksums and manifest"):
        write_manifest(staged, {
            "period": period, "run_id": run_id, "stamp": stamp,
            "registry": {"id": registry.id, "version": registry.version,
                         "dictionary_sha256": dictionary_checksum(registry)},
            "code_version": code_version(PROJECT_ROOT),
            "models": inputs.models[["measure_id", "model_version"]].to_dict("records"),
            "submissions": inputs.submissions.to_dict("records"),
        })
    with phases("privacy checks"):     # on every file as it will be released, the manifest too
        problems = privacy_problems_by_kind(staged, registry, inputs.sites, inputs.cases,
                                            patient_key_lookup(folders.warehouse), memory_dir=privacy_memory(folders))
    if any(problems):
        raise PublicationWithheld([p for kind in problems for p in kind])
    with phases("release"):
        target = release(folders.publish, staged, period, run_id[:8])
        _remember(target, problems)
    with phases("analyst copy"):
        publish_analyst_copy(folders.warehouse, folders.analyst, run_id[:8])
    sites = target / "sites"
    return Publication(period=period, release=target, files=len(written), phases=phases,
                       site_packages=len(list(sites.iterdir())) if sites.exists() else 0)


_CHECKED: dict[tuple, tuple[list[str], list[str], list[str]]] = {}


def _state(folder: Path) -> tuple:
    """What the folder holds now: every file's path within it, size and modification time."""
    return tuple((str(p.relative_to(folder)), s.st_size, s.st_mtime_ns) for p in sorted(folder.rglob("*"))
                 if p.is_file() for s in [p.stat()])


def _remember(folder: Path, problems: tuple[list[str], list[str], list[str]]) -> None:
    """Keep the privacy checks' result for ``folder`` as it is now (a release, moved whole from the
    staging folder they checked: the same files, sizes and modification times)."""
    _CHECKED.clear()
    _CHECKED[(str(folder), _state(folder))] = problems


def released_problems(folder: Path, registry: Registry, warehouse: Path,
                      memory_dir: Path | None = None) -> tuple[list[str], list[str], list[str]]:
    """The privacy problems (kinds 1, 2, 3) of a released folder, as the asset checks report them.

    The checks scanned the folder just before it was released; when the asset checks run in the same
    process (``execute_in_process``, ``cqi``: the in-process executor) and no file of the folder has
    changed since (same paths, sizes and modification times), that result is reported; otherwise the
    folder is scanned again, once for the three checks (``memory_dir``: see ``privacy_memory``).
    """
    key = (str(folder), _state(folder))
    if key not in _CHECKED:
        inputs = PublicationInputs.load(folder / INPUTS)
        _remember(folder, privacy_problems_by_kind(folder, registry, inputs.sites, inputs.cases,
                                                   patient_key_lookup(warehouse), memory_dir=memory_dir))
    return _CHECKED[key]
