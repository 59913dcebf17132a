"""``cqi demo``, ``run``, ``submit``, ``status``, ``synth``, ``validate``, ``dev``: main paths and errors.

Tests run in file order on the shared demo deployment: the busy ``submit``
leaves a file in landing that the ``run`` test then receives.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestration.registry import load_registry
from orchestration.settings import REGISTRIES_DIR
from support import demo_registry, site_file

pytestmark = pytest.mark.slow

BAR_MARKS = ("\r", "\x1b[?25l", "━", "\x1b[2K")   # carriage return, cursor hiding, bar glyph, line erase


def test_demo_builds_everything_and_prints_where_it_is(demo):
    deployment, done = demo
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("succeeded") == 2, "two rounds, each a successful run"
    for label in ("warehouse (DuckDB):", "receipts:", "abstractor query lists:", "per-site feedback:"):
        line = next(line for line in done.stdout.splitlines() if label in line)
        assert Path(line.split(label, 1)[1].strip()).exists(), line
    assert (deployment.data_dir / "analyst" / "latest" / "analyst.duckdb").exists()


def test_demo_output_is_plain_lines_when_not_a_terminal(demo):
    _, done = demo
    for mark in BAR_MARKS:
        assert mark not in done.stdout and mark not in done.stderr, repr(mark)


def test_demo_with_a_missing_registry_says_which_to_choose(empty_deployment):
    empty_deployment.env["CQI_REGISTRY"] = "no_such_registry"
    done = empty_deployment.cqi("demo", "--cases", "100")
    assert done.returncode == 2
    assert "no registry definition" in done.stderr and "CQI_REGISTRY" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (empty_deployment.data_dir / "demo_collaborative").exists()


def test_submit_without_run_drops_the_file_in_the_sites_landing_folder(deployment, tmp_path):
    sent = site_file(demo_registry(), tmp_path, "S09", cases=12, period_month=11, name="S09_extra_2025Q4.csv")
    done = deployment.cqi("submit", str(sent), "--site", "S09", "--no-run")
    assert done.returncode == 0, done.stderr
    landed = deployment.data_dir / "landing" / "S09" / sent.name
    assert f"submitted {sent.name} to {landed.parent}" in done.stdout
    assert landed.read_bytes() == sent.read_bytes()
    assert not landed.with_name(landed.name + ".partial").exists()


def test_submit_while_a_run_is_in_progress_leaves_the_file_waiting(deployment, tmp_path, lock_held):
    sent = site_file(demo_registry(), tmp_path, "S10", cases=8, period_month=11, name="S10_waiting_2025Q4.csv")
    with lock_held(deployment.data_dir):
        done = deployment.cqi("submit", str(sent), "--site", "S10")
    assert done.returncode == 4, done.stderr[-2000:]
    assert "another pipeline run is in progress" in done.stderr
    assert "waits in" in done.stderr
    assert (deployment.data_dir / "landing" / "S10" / sent.name).is_file()


def test_run_receives_what_waits_in_landing(deployment):
    waiting = [deployment.data_dir / "landing" / "S09" / "S09_extra_2025Q4.csv",
               deployment.data_dir / "landing" / "S10" / "S10_waiting_2025Q4.csv"]
    assert all(path.is_file() for path in waiting), "left by the two submit tests before"
    done = deployment.cqi("run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded" in done.stdout
    assert not any(path.exists() for path in waiting), "received files leave landing"
    receipts = [p.read_text() for p in (deployment.data_dir / "receipts" / "S10").glob("*.txt")]
    assert any("Receipt for 'S10_waiting_2025Q4.csv' from site S10" in text for text in receipts)


def test_status_lists_the_sites_submissions_with_their_state(deployment):
    done = deployment.cqi("status", "--site", "S09")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "S09_" in line]
    sent = sorted(p.name for p in (deployment.data_dir / "demo_collaborative" / "landing" / "S09").iterdir())
    assert [name for name in sent if not any(name[:32] in row for row in rows)] == []
    received_at, name, state, loaded, rejected, submission = next(
        row for row in rows if "S09_extra_2025Q4.csv" in row).split()
    assert (state, loaded, rejected) == ("accepted", "12", "0")
    assert submission.startswith("S09-")


def test_status_of_an_unknown_site_lists_the_roster(deployment):
    done = deployment.cqi("status", "--site", "S99")
    assert done.returncode == 2
    assert "unknown site 'S99'" in done.stderr and "S01" in done.stderr


def test_submit_to_an_unknown_site_is_refused_before_anything_is_copied(deployment, tmp_path):
    sent = site_file(demo_registry(), tmp_path, "S01", cases=3)
    done = deployment.cqi("submit", str(sent), "--site", "XX")
    assert done.returncode == 2
    assert "unknown site 'XX'" in done.stderr
    assert not (deployment.data_dir / "landing" / "XX").exists()


def test_run_while_another_run_holds_the_warehouse_exits_4(deployment, lock_held):
    with lock_held(deployment.data_dir):
        done = deployment.cqi("run")
    assert done.returncode == 4
    assert "another pipeline run is in progress" in done.stderr and "try again" in done.stderr


def test_run_with_nothing_to_do_says_how_to_start(empty_deployment):
    done = empty_deployment.cqi("run")
    assert done.returncode == 1
    assert "nothing to do" in done.stderr and "cqi submit" in done.stderr


def test_synth_writes_site_files_and_the_ground_truth(empty_deployment, tmp_path):
    out = tmp_path / "collab"
    done = empty_deployment.cqi("synth", "--out", str(out), "--cases", "400", "--sites", "4", "--periods", "2")
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    sites = sorted(p.name for p in (out / "landing").iterdir())
    assert len(sites) == 4
    assert all(any((out / "landing" / s).iterdir()) for s in sites)
    assert (out / "truth" / "cases.parquet").is_file()
    for mark in BAR_MARKS:
        assert mark not in done.stdout + done.stderr


def test_synth_into_a_file_is_a_usage_error(empty_deployment, tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    done = empty_deployment.cqi("synth", "--out", str(target), "--cases", "100")
    assert done.returncode == 2
    assert "is a file" in done.stderr


def test_validate_reports_what_the_registry_defines(empty_deployment):
    registry = load_registry(REGISTRIES_DIR / "general_surgery")
    done = empty_deployment.cqi("validate")
    assert done.returncode == 0, done.stderr
    assert f"{len(registry.variables)} variables" in done.stdout
    assert f"{len(registry.measures)} measures" in done.stdout


def test_validate_reports_a_broken_definition_without_a_traceback(empty_deployment, tmp_path):
    broken = tmp_path / "registry"
    shutil.copytree(REGISTRIES_DIR / "general_surgery", broken)
    (broken / "measures.yaml").write_text("measures:\n  - id: x\n    event: [not, sql\n", encoding="utf-8")
    empty_deployment.env["CQI_REGISTRY_DIR"] = str(broken)
    done = empty_deployment.cqi("validate")
    assert done.returncode == 2
    assert str(broken) in done.stderr and "cqi validate" in done.stderr
    assert "Traceback" not in done.stderr


def test_dev_refuses_a_port_that_is_not_a_number(empty_deployment):
    done = empty_deployment.cqi("dev", "--port", "web")
    assert done.returncode == 2
    assert "--port" in done.stderr
