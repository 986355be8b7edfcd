"""Going live (issue 17, point 6): in production the first privacy policy is the shop's own
text (CUSTOS_POLICY_FILE), never the bundled demo; the controller and its DPO are settings
shown in the Article 30 record and on the policy. Production settings without them are
refused with one message that names the setting."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from api.app import create_app
from api.clock import FakeClock
from api.policy.service import demo_text, initial_text, seed_first_version
from api.services import Services, build_services
from api.settings import DEMO_CONTROLLER, Settings
from models import PrivacyPolicy
from tests.conftest import CLIENT_IP, GQL, POLICY_SEEDED_AT, signed_in_employee

REPO = Path(__file__).parents[1]
KEY = secrets.token_urlsafe(48)
SHOP_TEXT = "Shop Ltd privacy policy.\nWe collect only what we say.\n"
CONTROLLER = {
    "controller_name": "Shop Ltd",
    "controller_contact": "privacy@shop.example, 1 High Street, Leeds",
    "dpo_contact": "dpo@shop.example",
}
POLICY = "{ currentPolicy { version text controller { name contact dpo } } }"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "privacy-policy.txt"
    path.write_text(SHOP_TEXT, "utf-8")
    return path


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "secret_key": SecretStr(KEY),
        "public_url": "https://shop.example",
        **CONTROLLER,
    }
    values.update(overrides)
    return Settings(**values)


# --- settings ------------------------------------------------------------------------------


def test_production_without_a_policy_file_is_refused_with_one_clear_message() -> None:
    with pytest.raises(ValidationError) as raised:
        production()
    [error] = raised.value.errors()
    assert "CUSTOS_POLICY_FILE must name the shop's privacy policy text" in error["msg"]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        pytest.param(lambda d: d / "missing.txt", "does not exist", id="missing"),
        pytest.param(lambda d: d, "cannot be read", id="a-directory"),
        pytest.param(
            lambda d: (d / "latin1.txt", (d / "latin1.txt").write_bytes(b"Caf\xe9"))[0],
            "cannot be read",
            id="not-utf8",
        ),
        pytest.param(
            lambda d: (d / "empty.txt", (d / "empty.txt").write_text(" \n\t\n"))[0],
            "is empty",
            id="blank",
        ),
    ],
)
def test_an_unusable_policy_file_is_refused(tmp_path: Path, make: Any, problem: str) -> None:
    path = make(tmp_path)
    for build in (lambda: production(policy_file=path), lambda: Settings(policy_file=path)):
        with pytest.raises(ValidationError) as raised:
            build()
        [error] = raised.value.errors()
        assert f"CUSTOS_POLICY_FILE: {path} {problem}" in error["msg"]


@pytest.mark.parametrize("missing", sorted(CONTROLLER))
def test_production_needs_the_controller_and_dpo(policy_file: Path, missing: str) -> None:
    with pytest.raises(ValidationError, match=f"CUSTOS_{missing.upper()}.* must be set"):
        production(policy_file=policy_file, **{missing: "  "})


def test_production_reads_everything_from_the_environment(
    policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("CUSTOS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CUSTOS_ENV", "production")
    monkeypatch.setenv("CUSTOS_SECRET_KEY", KEY)
    monkeypatch.setenv("CUSTOS_PUBLIC_URL", "https://shop.example")
    monkeypatch.setenv("CUSTOS_POLICY_FILE", str(policy_file))
    for name, value in CONTROLLER.items():
        monkeypatch.setenv(f"CUSTOS_{name.upper()}", value)
    settings = Settings()
    assert settings.policy_file == policy_file
    assert (settings.controller.name, settings.controller.dpo) == ("Shop Ltd", "dpo@shop.example")


def test_development_keeps_the_bundled_text_and_demo_controller() -> None:
    settings = Settings(env="development")
    assert initial_text(settings) == demo_text()
    assert "Privacy Policy" in demo_text()
    assert settings.controller == DEMO_CONTROLLER


def test_the_demo_text_is_never_the_production_text_even_past_validation() -> None:
    # given production settings built without validation (model_construct)
    unchecked = Settings.model_construct(env="production", policy_file=None)
    # then no first version can be made from the demo text
    with pytest.raises(RuntimeError, match="CUSTOS_POLICY_FILE"):
        initial_text(unchecked)


# --- the seeded first version --------------------------------------------------------------


async def test_production_seeds_the_shops_own_text(policy_file: Path) -> None:
    # given an empty version table and production settings naming the shop's file
    await PrivacyPolicy.all().delete()
    # when the first version is seeded
    assert await seed_first_version(
        now=POLICY_SEEDED_AT, settings=production(policy_file=policy_file)
    )
    # then it holds the shop's text, not the demo's
    [version] = await PrivacyPolicy.all()
    assert version.text == SHOP_TEXT
    assert version.text != demo_text()


def test_migrate_in_production_seeds_the_file_and_refuses_without_it(
    tmp_path: Path, policy_file: Path
) -> None:
    # given production settings in the environment, as an operator sets them
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CUSTOS_") and k != "TEST_DATABASE_URL"
    }
    database = tmp_path / "custos.sqlite3"
    env.update(
        DATABASE_URL=f"sqlite://{database}",
        CUSTOS_ENV="production",
        CUSTOS_SECRET_KEY=KEY,
        CUSTOS_PUBLIC_URL="https://shop.example",
        **{f"CUSTOS_{k.upper()}": v for k, v in CONTROLLER.items()},
    )
    migrate = [sys.executable, "-m", "api", "migrate"]
    # when `custos migrate` runs without CUSTOS_POLICY_FILE
    refused = subprocess.run(
        migrate, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    # then it refuses, naming the setting, and creates no database
    assert refused.returncode != 0
    assert "CUSTOS_POLICY_FILE" in refused.stderr + refused.stdout
    assert not database.exists() or database.stat().st_size == 0
    # when it runs with the file
    env["CUSTOS_POLICY_FILE"] = str(policy_file)
    done = subprocess.run(
        migrate, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    # then version 1 is the shop's text
    read = (
        "import asyncio, sys\n"
        "from tortoise import Tortoise\n"
        "async def main():\n"
        "    await Tortoise.init(db_url=sys.argv[1], modules={'models': ['models']})\n"
        "    from models import PrivacyPolicy\n"
        "    rows = await PrivacyPolicy.all()\n"
        "    print(repr([(r.version, r.text) for r in rows]))\n"
        "    await Tortoise.close_connections()\n"
        "asyncio.run(main())\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", read, env["DATABASE_URL"]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == repr([("1", SHOP_TEXT)])


# --- the controller on the policy and in the processing record ------------------------------


@pytest.fixture
async def shop_gql(
    settings: Settings, clock: FakeClock, policy_file: Path
) -> AsyncIterator[tuple[GQL, Services]]:
    """The API as the shop runs it: its own controller and DPO in the settings."""
    shop = settings.model_copy(update={"policy_file": policy_file, **CONTROLLER})
    built = build_services(shop, clock=clock)
    await built.load_authorizer()
    app = create_app(shop, services=built, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield GQL(c), built
    built.close()


async def test_the_policy_names_the_controller_and_dpo(
    shop_gql: tuple[GQL, Services],
) -> None:
    gql, _ = shop_gql
    body = await gql(POLICY)
    assert body["data"]["currentPolicy"]["controller"] == {
        "name": "Shop Ltd",
        "contact": "privacy@shop.example, 1 High Street, Leeds",
        "dpo": "dpo@shop.example",
    }
    history = await gql("{ policyHistory { controller { name } } }")
    assert history["data"]["policyHistory"] == [{"controller": {"name": "Shop Ltd"}}]


async def test_development_shows_the_demo_controller(gql: GQL) -> None:
    body = await gql(POLICY)
    assert body["data"]["currentPolicy"]["controller"] == {
        "name": DEMO_CONTROLLER.name,
        "contact": DEMO_CONTROLLER.contact,
        "dpo": DEMO_CONTROLLER.dpo,
    }


async def test_the_processing_record_names_the_controller_and_dpo(
    shop_gql: tuple[GQL, Services],
) -> None:
    gql, services = shop_gql
    token, _ = await signed_in_employee(gql, services, "legal", name="lee")
    body = await gql("{ processingRecord }", token=token)
    record = body["data"]["processingRecord"]
    assert record["format"] == "custos.processing-record/2"
    assert record["controller"] == {
        "name": "Shop Ltd",
        "contact": "privacy@shop.example, 1 High Street, Leeds",
        "dpo": "dpo@shop.example",
        "url": "https://shop.example.test",
    }
