"""Running the installed ``cqi`` as a user would, on a data folder of its own."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CQI = str(Path(sys.executable).parent / "cqi")


@dataclass
class Deployment:
    data_dir: Path
    env: dict

    def cqi(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return run_cqi(self.env, *args, timeout=timeout)


def deployment_env(data_dir: Path) -> dict:
    """The caller's environment without its cqi and Dagster settings, pointed at ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CQI_", "DAGSTER_"))}
    env.update(CQI_DATA_DIR=str(data_dir), CQI_PSEUDONYM_SECRET="cli-test-secret", NO_COLOR="1", COLUMNS="200")
    return env


def run_cqi(env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([CQI, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@contextmanager
def run_lock_held(data_dir: Path):
    """Hold the deployment's run lock as a running pipeline does (orchestration/cycle.py)."""
    path = data_dir / ".run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
