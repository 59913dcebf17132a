"""Headless Chromium for the browser tests (Debian's ``chromium`` package).

If Chromium is missing and we are root with apt-get, install it once;
otherwise the tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def pytest_configure(config):
    # Registered here so that --strict-markers accepts it even before pyproject lists it.
    config.addinivalue_line("markers", "browser: renders in headless Chromium (needs Debian's chromium package)")


def _find() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _find()
    if path is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False, env=env,
                       capture_output=True, timeout=1200)
        path = _find()
    if path is None:
        pytest.skip("chromium is not installed and apt-get is unavailable (or not root) to install it")
    return path


@pytest.fixture
def run_chromium(chromium, tmp_path):
    """Run headless Chromium with the given extra arguments on a URL; returns the completed process."""

    def run(url: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args, url]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)

    return run
