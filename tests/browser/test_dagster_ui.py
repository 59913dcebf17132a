"""The Dagster UI serves this project's asset graph: dagster-webserver on a free port, rendered in Chromium.

The webserver loads ``orchestration.definitions`` in a code-server child
process, so it is started in its own process group and the whole group is
killed whatever happens. The graph is drawn by the UI's JavaScript from
GraphQL answers; ``--virtual-time-budget`` lets Chromium run it before the
DOM is dumped. A screenshot is kept under ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
WEBSERVER = str(Path(sys.executable).parent / "dagster-webserver")
ASSETS_QUERY = '{ assetNodes { assetKey { path } groupName } }'
REPOSITORY_QUERY = '{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }'
LOCATION_QUERY = ('{ workspaceOrError { ... on Workspace { locationEntries { name '
                  'locationOrLoadError { __typename ... on PythonError { message } } } } } }')
GROUPS = ("intake", "quality", "models", "warehouse", "publish")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["data"]


def wait_for_assets(base: str, server: subprocess.Popen, log: Path, timeout: float = 240) -> list[dict]:
    """The asset nodes once the code location has loaded; fail with the reason if it cannot."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            nodes = graphql(base, ASSETS_QUERY)["assetNodes"]
            if nodes:
                return nodes
            for entry in graphql(base, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]:
                error = entry["locationOrLoadError"] or {}
                if error.get("__typename") == "PythonError":
                    pytest.fail(f"the code location {entry['name']} did not load:\n{error['message'][:2000]}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, TypeError):
            pass
        time.sleep(1)
    pytest.fail(f"dagster-webserver did not serve the assets within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """dagster-webserver on this project with a fresh instance; yields its base URL and asset nodes."""
    root = tmp_path_factory.mktemp("dagster_ui")
    home = root / "data" / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_bytes((PROJECT_ROOT / "dagster.yaml").read_bytes())
    env = {**os.environ, "CQI_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(home)}
    port = free_port()
    log = root / "webserver.log"
    with open(log, "w") as out:
        server = subprocess.Popen([WEBSERVER, "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)],
                                  cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        yield base, wait_for_assets(base, server, log)
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(server.pid, sig)
            except ProcessLookupError:
                break
            try:
                server.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(server.pid, signal.SIGKILL)   # the code server, should it outlive its parent
        except ProcessLookupError:
            pass


def group_lineage_url(base: str, group: str) -> str:
    repository = graphql(base, REPOSITORY_QUERY)["repositoriesOrError"]["nodes"][0]
    return f"{base}/locations/{repository['name']}@{repository['location']['name']}/asset-groups/{group}/lineage"


def test_the_webserver_serves_every_asset_group_of_the_project(webserver):
    _, nodes = webserver
    assert set(GROUPS) <= {node["groupName"] for node in nodes}
    names = {node["assetKey"]["path"][-1] for node in nodes}
    assert {"submissions", "findings", "mart_site_results", "publication"} <= names


@pytest.mark.parametrize("group", ["intake", "publish"])
def test_the_group_lineage_draws_a_node_for_every_asset_of_the_group(webserver, run_chromium, group):
    base, nodes = webserver
    members = [node["assetKey"]["path"][-1] for node in nodes if node["groupName"] == group]
    assert members
    # the UI draws only the nodes inside the window: tall enough for the whole group and its neighbours
    done = run_chromium(group_lineage_url(base, group), "--dump-dom", "--virtual-time-budget=30000",
                        "--window-size=1600,2000", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    # each asset node's title carries its name as a tooltip
    missing = [name for name in members if f'data-tooltip="{name}"' not in done.stdout]
    assert not missing, f"the rendered lineage of {group} has no node for {missing}:\n{done.stdout[-1500:]}"


def test_a_screenshot_of_the_asset_graph_is_saved(webserver, run_chromium):
    base, _ = webserver
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dagster_asset_graph.png"
    shot.unlink(missing_ok=True)
    done = run_chromium(group_lineage_url(base, "intake"), f"--screenshot={shot}", "--virtual-time-budget=30000",
                        "--window-size=1600,1000", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    print(f"screenshot of the Dagster asset graph: {shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000, "a drawn graph is not a blank page"
