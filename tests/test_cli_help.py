"""Every `custos` command explains itself: `--help` runs (exit 0) for the root and each
command and group, found by walking the click tree (a new command is covered without a
change here), and ends with an example and the environment variables the command reads,
each a real setting. `custos --version` names the version."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from api.cli import custos, main
from api.cli.base import ENVIRONMENT, Command, Group
from api.settings import Settings
from api.version import VERSION
from tests.cli_helpers import REPO


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            paths += _walk(sub, (*path, name))
    return paths


PATHS = _walk(custos)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = custos
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_every_command_of_the_argparse_cli_is_still_there() -> None:
    # what the README, the tests and operators' scripts type
    before = {
        ("serve",),
        ("migrate",),
        ("seed-demo",),
        ("create-employee",),
        ("deactivate-employee",),
        ("audit", "verify"),
        ("audit", "export"),
        ("policy", "send-notices"),
        ("policy", "test"),
        ("policy", "what-if"),
        ("rights", "overdue"),
        ("rights", "intake"),
        ("mail", "send-pending"),
        ("mail", "status"),
        ("mail", "requeue"),
        ("mail", "purge-dead"),
        ("retention", "run"),
        ("retention", "rules"),
        ("disclosures", "export"),
        ("disclosures", "verify"),
        ("processing-record",),
        ("export-schema",),
    }
    assert before <= set(PATHS)
    assert ("employees", "list") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "custos")
def test_help_names_an_example_and_the_environment(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    command = _command(path)
    assert isinstance(command, Command | Group), f"{path} is not a documented command"
    # when its help is asked for
    assert main([*path, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    # then it says how it is used, what it reads from the environment, and an example
    assert out.startswith(f"Usage: {' '.join(('custos', *path))} ")
    assert "Environment:" in out
    for name in command.env:
        assert name in out
    assert "Example:" in out
    assert f"$ {command.example}" in out
    assert " ".join(("custos", *path)) in command.example


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "custos")
def test_the_environment_named_is_real_settings(path: tuple[str, ...]) -> None:
    command = _command(path)
    assert isinstance(command, Command | Group)
    for name in command.env:
        assert name in ENVIRONMENT
        field = "database_url" if name == "DATABASE_URL" else name.removeprefix("CUSTOS_").lower()
        assert field in Settings.model_fields, name


def test_version_names_the_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"custos {VERSION}\n"
    assert VERSION != "0+unknown"  # installed: the version is pyproject's


def test_help_runs_as_a_process_and_short_h_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api", "audit", "export", "-h"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: custos audit export ")
    assert "--since WHEN" in done.stdout
    assert "7d" in done.stdout
