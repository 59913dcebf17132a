"""Shared, computed once per session: a small collaborative and its uninterrupted reference run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from reliability.harness import StageServer, intake_state, marts, release_state, step_duration

CASES, SITES, PERIODS, SEED = 600, 4, 2, 3


@dataclass
class Reference:
    inputs: Path           # landing/<site>/<file> as the sites send them
    data_dir: Path         # after one uninterrupted cycle
    marts: dict
    intake: dict
    release: dict
    intake_seconds: float
    publication_seconds: float
    dbt_seconds: float
    intake_end: float

    def fresh(self, folder: Path) -> Path:
        """A new data folder with the sites' files waiting in landing (and an empty Dagster instance)."""
        shutil.copytree(self.inputs / "landing", folder / "landing")
        shutil.copytree(self.inputs.parent / "instance" / "dagster_home", folder / "dagster_home")
        return folder

    def copy(self, folder: Path) -> Path:
        """A copy of the reference data folder (links kept as links)."""
        shutil.copytree(self.data_dir, folder, symlinks=True)
        return folder


@pytest.fixture(scope="session")
def stage_server(tmp_path_factory):
    server = StageServer(tmp_path_factory.mktemp("stage_server"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def reference(tmp_path_factory, stage_server) -> Reference:
    from orchestration.registry import load_registry
    from orchestration.settings import REGISTRIES_DIR
    from orchestration.synth import generate_collaborative

    root = tmp_path_factory.mktemp("reference")
    generate_collaborative(load_registry(REGISTRIES_DIR / "general_surgery"), root / "inputs", cases=CASES,
                           sites=SITES, periods=PERIODS, seed=SEED, defects=False)
    reference = Reference(root / "inputs", root / "data", {}, {}, {}, 0.0, 0.0, 0.0, 0.0)
    assert stage_server.run("instance", root / "instance")["returncode"] == 0
    reference.fresh(reference.data_dir)
    answer = stage_server.run("cycle", reference.data_dir)
    assert answer["returncode"] == 0, "\n".join(answer["tail"])
    reference.marts = marts(reference.data_dir / "warehouse.duckdb")
    reference.intake = intake_state(reference.data_dir)
    reference.release = release_state((reference.data_dir / "publish" / "latest").resolve())
    reference.intake_seconds = step_duration(answer, "site_submissions")
    reference.publication_seconds = step_duration(answer, "publication")
    reference.dbt_seconds = step_duration(answer, "warehouse_models", "mart_models")
    reference.intake_end = answer["steps"]["site_submissions"][1]   # seconds from the start of the run
    assert reference.marts and all(len(t) for t in reference.marts.values())
    assert reference.intake["landing"] == [] and len(reference.intake["raw.cases"]) > 100
    return reference
