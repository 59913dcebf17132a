"""Every command answers --help, and the README documents every command and every exit code."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.cli.app import ExitCode
from orchestration.settings import PROJECT_ROOT

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)
README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def commands_section() -> str:
    return README.split("## Commands", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_with_its_purpose_and_options(command):
    done = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exit_code == 0, done.output
    assert f"Usage: cqi {command}" in done.output or f"Usage: root {command}" in done.output
    callback = next(c.callback for c in app.registered_commands if (c.name or c.callback.__name__) == command)
    summary = callback.__doc__.strip().splitlines()[0]
    assert summary[:40] in " ".join(done.output.split()), "the help shows the command's docstring"
    assert "--help" in done.output


def test_the_readme_lists_every_command():
    listed = set(re.findall(r"^\| `cqi (\w+)", commands_section(), re.M))
    assert listed == set(COMMANDS)


def test_the_readme_documents_every_exit_code_the_code_uses():
    documented = {int(code): meaning for code, meaning in re.findall(r"^\| (\d) \| (.+) \|$", commands_section(), re.M)}
    assert set(documented) == {int(code) for code in ExitCode}
    assert all(len(meaning) > 5 for meaning in documented.values())


def test_the_top_level_help_lists_the_commands_and_the_exit_codes():
    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exit_code == 0
    for command in COMMANDS:
        assert re.search(rf"\b{command}\b", done.output)
    assert "Exit codes" in done.output
