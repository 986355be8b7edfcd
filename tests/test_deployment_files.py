"""The container files operators use (Dockerfile, compose.yaml, deploy/custos.env.example)
hold together: images cannot be built here, so what can be checked without Docker is
checked. The install script itself runs in CI (.ci/run calls scripts/check-install.sh)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from api.settings import Settings

REPO = Path(__file__).parents[1]


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions, continuation lines joined, one list per stage."""
    text = (REPO / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_image_is_built_in_stages_and_runs_unprivileged_with_a_healthcheck() -> None:
    build, final = _stages()[0], _stages()[-1]
    assert len(_stages()) >= 2
    # the build stage installs with the script CI checks
    assert "RUN scripts/install.sh /opt/custos" in build
    # the final stage takes the installed environment only, and runs as a named user
    assert any(i.startswith("COPY --from=build /opt/custos") for i in final)
    users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    assert any(i.upper().startswith("HEALTHCHECK ") and "/healthz" in i for i in final)
    assert any(i.upper().startswith("CMD ") and "serve" in i for i in final)


def test_check_install_copies_what_the_image_copies() -> None:
    build = _stages()[0]
    copied = set()
    for instruction in build:
        if instruction.upper().startswith("COPY ") and "--from" not in instruction:
            copied.update(instruction.split()[1:-1])
    script = (REPO / "scripts" / "check-install.sh").read_text("utf-8")
    [listed] = re.findall(r"cp -r ((?:[\w.]+ )+)\"\$work/src/\"", script)
    assert copied == set(listed.split())


def test_ci_runs_the_install_check() -> None:
    assert "scripts/check-install.sh" in (REPO / ".ci" / "run").read_text("utf-8")


def _compose() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((REPO / "compose.yaml").read_text("utf-8"))
    return loaded


def test_compose_starts_custos_after_its_migration_on_a_healthy_database() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    # the policy file the example settings name is mounted where they say
    mount = f"./deploy/privacy-policy.txt:{_example_environment()['CUSTOS_POLICY_FILE']}:ro"
    assert mount in services["custos"]["volumes"]
    assert mount in services["migrate"]["volumes"]
    assert {"db", "mail", "migrate", "custos"} <= set(services)
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["custos", "migrate"]
    assert (
        services["custos"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    )
    assert services["custos"]["environment"]["DATABASE_URL"].startswith("postgres://")
    # published on loopback only: TLS is the proxy's job
    assert all(p.startswith("127.0.0.1:") for p in services["custos"]["ports"])


def test_compose_declares_every_named_volume_and_keeps_the_log_keys_on_one() -> None:
    compose = _compose()
    services, declared = compose["services"], compose.get("volumes") or {}
    assert isinstance(services, dict)
    assert isinstance(declared, dict)
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"
    # the signing keys outlive the container, where the example settings say they are
    keys = _example_environment()["CUSTOS_AUDIT_KEY_DIR"]
    assert f"audit-keys:{keys}" in services["custos"]["volumes"]


def _example_environment() -> dict[str, str]:
    lines = (REPO / "deploy" / "custos.env.example").read_text("utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {pair[0]: pair[1] for pair in pairs}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CUSTOS_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_example_settings_pass_production_checks_once_filled_in(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given the example with every CHANGE value replaced, and the policy file in place
    example = _example_environment()
    assert "CHANGE" in example.values()
    for name, value in example.items():
        clean_environment.setenv(name, secrets.token_urlsafe(48) if value == "CHANGE" else value)
    policy = tmp_path / "privacy-policy.txt"
    policy.write_text("The shop's own privacy policy.", "utf-8")
    clean_environment.setenv("CUSTOS_POLICY_FILE", str(policy))
    clean_environment.setenv("DATABASE_URL", "postgres://custos:pw@db:5432/custos")
    # then production settings load from it
    settings = Settings()
    assert settings.production
    assert settings.policy_file == policy


def test_the_example_settings_are_refused_as_they_stand(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    # given the example copied without filling it in
    for name, value in _example_environment().items():
        clean_environment.setenv(name, value)
    # then the server would refuse to start
    with pytest.raises(ValidationError):
        Settings()


def _unit_commands() -> list[list[str]]:
    """The custos command lines the systemd units run, without the program's path."""
    commands = []
    for unit in sorted((REPO / "deploy" / "systemd").glob("*.service")):
        for line in unit.read_text("utf-8").splitlines():
            name, _, value = line.partition("=")
            if name in ("ExecStart", "ExecStartPre"):
                program, *arguments = value.split()
                assert program == "/opt/custos/bin/custos"  # where scripts/install.sh puts it
                commands.append(arguments)
    return commands


@pytest.mark.parametrize("arguments", _unit_commands(), ids=" ".join)
def test_the_systemd_units_run_commands_that_exist(arguments: list[str]) -> None:
    # each command line of a unit is accepted by the CLI (its help, so nothing runs)
    done = subprocess.run(
        [sys.executable, "-m", "api", *arguments, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout or "usage" in done.stdout
