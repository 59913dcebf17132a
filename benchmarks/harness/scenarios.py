"""The benchmark scenarios and the untimed preparation of their data.

Why a registry copy: the bundled registry's calendar has four quarters, and
M and L span eight. The copy differs in ``last_period`` and in
``min_c_statistic`` (lowered to ``MIN_C_STATISTIC``): at M the synthetic
readmission model reaches c = 0.64, under the demo's 0.65 floor, and the
blocking model gate would then skip the marts and publication, leaving half
the cycle unmeasured. The benchmark measures cost, not model quality. The generated
roster replaces ``sites.csv`` through ``CQI_SITES_FILE``, as a deployment
with its own sites would. Generation runs in a subprocess (its memory never
counts) and is cached in the work folder, keyed by its arguments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from orchestration.settings import PROJECT_ROOT, REGISTRIES_DIR

SECRET = "benchmark-harness-secret-not-for-real-data"
MIN_C_STATISTIC = 0.55


@dataclass(frozen=True)
class Scenario:
    name: str
    sites: int
    periods: int
    cases: int
    seed: int = 20251

    def resized(self, cases: int | None, sites: int | None) -> "Scenario":
        return Scenario(self.name, sites or self.sites, self.periods, cases or self.cases, self.seed)


SCENARIOS = {
    "smoke": Scenario("smoke", sites=6, periods=2, cases=600),
    "S": Scenario("S", sites=10, periods=4, cases=10_000),
    "M": Scenario("M", sites=80, periods=8, cases=1_000_000),
    "L": Scenario("L", sites=700, periods=8, cases=10_000_000),
}


def last_period(first: str, count: int) -> str:
    year, quarter = int(first[:4]), int(first[-1])
    index = year * 4 + quarter - 1 + count - 1
    return f"{index // 4}Q{index % 4 + 1}"


def prepare_registry(work: Path, scenario: Scenario, registry_id: str = "general_surgery") -> Path:
    """A copy of the registry whose calendar spans the scenario's quarters."""
    target = work / "registry"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(REGISTRIES_DIR / registry_id, target)
    header = target / "registry.yaml"
    text = header.read_text(encoding="utf-8")
    first = re.search(r'first_period:\s*"?(\d{4}Q[1-4])"?', text).group(1)
    text = re.sub(r'last_period:\s*"?\d{4}Q[1-4]"?', f'last_period: "{last_period(first, scenario.periods)}"', text)
    text = re.sub(r"min_c_statistic:\s*[0-9.]+", f"min_c_statistic: {MIN_C_STATISTIC}", text)
    header.write_text(text, encoding="utf-8")
    return target


def generate(work: Path, scenario: Scenario, registry: Path) -> Path:
    """The synthetic collaborative in ``work/source`` (reused when generated with the same arguments)."""
    source = work / "source"
    stamp = source / "harness_arguments.json"
    wanted = json.dumps(asdict(scenario), sort_keys=True)
    if stamp.is_file() and stamp.read_text() == wanted:
        return source
    shutil.rmtree(source, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "orchestration.synth", "--out", str(source), "--cases", str(scenario.cases),
                    "--sites", str(scenario.sites), "--periods", str(scenario.periods), "--seed", str(scenario.seed),
                    "--registry", str(registry)], check=True, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL)
    stamp.write_text(wanted)
    return source


def environment(work: Path, source: Path, registry: Path) -> dict[str, str]:
    """The environment of every measured process: this deployment, nothing from the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CQI_", "DAGSTER_"))}
    env.update(CQI_DATA_DIR=str(work / "data"), CQI_REGISTRY_DIR=str(registry),
               CQI_SITES_FILE=str(source / "sites.csv"), CQI_PSEUDONYM_SECRET=SECRET,
               PYTHONPATH=str(PROJECT_ROOT))
    return env


def fresh_data_folder(work: Path, source: Path) -> Path:
    """An empty deployment with the first round of files in its landing zone."""
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(source / "landing", data / "landing")
    return data


def floor_files(source: Path) -> list[str]:
    """The first round's CSV files, without the whole-file problems the floor does not handle."""
    problems_file = source / "truth" / "file_problems.csv"
    problems = set()
    if problems_file.is_file():
        problems = {line.split(",")[0] for line in problems_file.read_text().splitlines()[1:]}
    return [str(p) for p in sorted((source / "landing").rglob("*.csv"))
            if p.relative_to(source).as_posix() not in problems]


def resubmissions(source: Path) -> list[Path]:
    folder = source / "resubmissions"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
