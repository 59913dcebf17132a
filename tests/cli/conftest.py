"""One demo collaborative for all command-line tests, built once by ``cqi demo`` itself.

A pipeline run costs tens of seconds, so the tests share one data folder
(session scope) and run commands against it as a user would: the installed
``cqi`` in a subprocess, stdout and stderr captured (not a terminal, so no
progress bars). Tests that run the pipeline again add files of their own and
assert only on what they added.
"""

from __future__ import annotations

import subprocess

import pytest

from cli_env import Deployment, deployment_env, run_lock_held

DEMO_CASES = 1500


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Deployment, subprocess.CompletedProcess]:
    """``cqi demo`` on a fresh data folder: the deployment and the demo command's own result."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    deployment = Deployment(data_dir, deployment_env(data_dir))
    done = deployment.cqi("demo", "--cases", str(DEMO_CASES))
    return deployment, done


@pytest.fixture(scope="session")
def deployment(demo) -> Deployment:
    deployment, done = demo
    assert done.returncode == 0, done.stderr[-3000:]
    return deployment


@pytest.fixture
def empty_deployment(tmp_path) -> Deployment:
    """A data folder where nothing has happened yet."""
    return Deployment(tmp_path / "data", deployment_env(tmp_path / "data"))


@pytest.fixture
def lock_held():
    return run_lock_held
