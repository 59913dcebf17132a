"""Progress bars appear on a terminal's stderr only; piped output stays plain lines."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import pytest

from cli_env import CQI, deployment_env
from orchestration.cli import progress

BAR_MARKS = ("\r", "\x1b[?25l", "━", "\x1b[2K")


NESTED = """
from orchestration.cli import progress
with progress.task("demo", total=2) as stages:
    with progress.task("first round", keep=False) as run:
        run.update(total=3, completed=2)
    stages.advance("demo: second round")
    with progress.task("second round", total=1, keep=False) as run:
        run.advance()
    stages.advance("demo: done")
print("live display left:", progress._live)
"""


def run_with_terminal_stderr(env: dict, *args: str, command: tuple[str, ...] = (CQI,)) -> tuple[int, str, str]:
    """Run cqi with stderr on a pseudo-terminal and stdout on a pipe; return code, stdout, terminal text."""
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen([*command, *args], env=env, stdout=subprocess.PIPE, stderr=slave,
                                 stdin=subprocess.DEVNULL)
        os.close(slave)
        stdout = child.stdout.read()
        terminal = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:       # EIO: the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        return child.wait(timeout=300), stdout.decode(), terminal.decode(errors="replace")
    finally:
        os.close(master)


@pytest.fixture
def env(tmp_path):
    return deployment_env(tmp_path / "data")


def test_synth_draws_a_bar_on_a_terminal_but_keeps_stdout_plain(env, tmp_path):
    code, stdout, terminal = run_with_terminal_stderr(env, "synth", "--out", str(tmp_path / "c"), "--cases", "300",
                                                      "--sites", "3", "--periods", "1")
    assert code == 0, terminal[-2000:]
    assert "generating 300 synthetic cases" in terminal and "━" in terminal
    assert stdout.strip() == f"wrote the synthetic collaborative to {tmp_path / 'c'}"


def test_nested_bars_share_one_display_and_sub_bars_go_when_done(env):
    code, stdout, terminal = run_with_terminal_stderr(env, "-c", NESTED, command=(sys.executable,))
    assert code == 0, terminal[-2000:]
    assert stdout.strip() == "live display left: None"
    final = terminal.replace("\r", "\n").splitlines()[-6:]
    assert any("demo: done" in line and "2/2" in line for line in final), final
    assert not any("first round" in line for line in final), "a finished sub-bar is removed"


def test_cqi_progress_0_turns_the_bar_off_on_a_terminal(env, tmp_path):
    env["CQI_PROGRESS"] = "0"
    code, stdout, terminal = run_with_terminal_stderr(env, "synth", "--out", str(tmp_path / "c"), "--cases", "300",
                                                      "--sites", "3", "--periods", "1")
    assert code == 0
    assert not any(mark in terminal for mark in BAR_MARKS), terminal[-500:]


def test_no_bar_and_no_output_from_a_task_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv("CQI_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress.enabled()
    with progress.task("work", total=2) as bar:
        bar.advance("half")
        bar.update(description="done", completed=2)
    with progress.pipeline_run("a run"):
        pass
    assert progress._live is None
    import sys

    assert sys.stderr.getvalue() == ""
    assert capsys.readouterr().out == ""
