"""Settings: one typed object read from the environment, strict outside development
(docs/ARCHITECTURE.md: security floor and configuration). Pure unit tests of
api.settings.Settings."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from api.settings import DEVELOPMENT_SECRET, Settings

RANDOM_KEY = secrets.token_urlsafe(36)  # 48 characters
PUBLIC_URL = "https://shop.example"
# What production needs besides the key and URL (issue 17): the shop's policy text and the
# controller (tests/test_going_live.py tests each).
POLICY_FILE = Path(tempfile.mkdtemp(prefix="custos-settings-")) / "privacy-policy.txt"
POLICY_FILE.write_text("The shop's own privacy policy.\n", "utf-8")
LIVE = {
    "policy_file": POLICY_FILE,
    "controller_name": "Shop Ltd",
    "controller_contact": "privacy@shop.example",
    "dpo_contact": "dpo@shop.example",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without Custos settings, whatever the shell
    (or `make`, which exports DATABASE_URL) has set."""
    for name in list(os.environ):
        if name.startswith("CUSTOS_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)


def test_random_key_is_48_characters() -> None:
    # guards the fixture value the production tests rely on
    assert len(RANDOM_KEY) == 48


def test_development_works_without_a_secret_key() -> None:
    # given no CUSTOS_SECRET_KEY and no CUSTOS_ENV
    # when settings are read
    settings = Settings()
    # then development is the default and the development key stands in
    assert settings.env == "development"
    assert not settings.production
    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET


def test_production_without_a_secret_key_is_refused() -> None:
    # given production and no secret key at all
    # when settings are built
    # then validation fails and says which variable to set
    with pytest.raises(ValidationError, match="CUSTOS_SECRET_KEY"):
        Settings(env="production")


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("changeme", id="changeme"),
        pytest.param("CHANGEME", id="changeme-uppercase"),
        pytest.param(DEVELOPMENT_SECRET, id="development-default"),
        pytest.param("", id="empty"),
        pytest.param(secrets.token_hex(16)[:31], id="31-chars"),
    ],
)
def test_production_with_a_placeholder_or_short_key_is_refused(key: str) -> None:
    # given production and a placeholder or a key shorter than 32 characters
    # when settings are built
    # then validation fails
    with pytest.raises(ValidationError, match="CUSTOS_SECRET_KEY"):
        Settings(env="production", secret_key=SecretStr(key))


def test_production_with_a_random_48_char_key_works() -> None:
    # given production and a 48-character random key
    settings = Settings(
        env="production", secret_key=SecretStr(RANDOM_KEY), public_url=PUBLIC_URL, **LIVE
    )
    # then the settings are built as given
    assert settings.production
    assert settings.secret_key.get_secret_value() == RANDOM_KEY


def test_production_secret_key_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given CUSTOS_ENV and CUSTOS_SECRET_KEY in the environment only
    monkeypatch.setenv("CUSTOS_ENV", "production")
    monkeypatch.setenv("CUSTOS_SECRET_KEY", RANDOM_KEY)
    monkeypatch.setenv("CUSTOS_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("CUSTOS_POLICY_FILE", str(POLICY_FILE))
    monkeypatch.setenv("CUSTOS_CONTROLLER_NAME", "Shop Ltd")
    monkeypatch.setenv("CUSTOS_CONTROLLER_CONTACT", "privacy@shop.example")
    monkeypatch.setenv("CUSTOS_DPO_CONTACT", "dpo@shop.example")
    # when settings are read
    settings = Settings()
    # then both are taken from there
    assert settings.env == "production"
    assert settings.production
    assert settings.secret_key.get_secret_value() == RANDOM_KEY


def test_custos_env_production_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # given CUSTOS_ENV=production and no key in the environment
    monkeypatch.setenv("CUSTOS_ENV", "production")
    # then reading the settings fails
    with pytest.raises(ValidationError, match="CUSTOS_SECRET_KEY"):
        Settings()


def test_database_url_is_read_from_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    # given DATABASE_URL (without the CUSTOS_ prefix) in the environment
    url = "postgres://custos:pw@db.internal:5432/custos"
    monkeypatch.setenv("DATABASE_URL", url)
    # when settings are read
    settings = Settings()
    # then it is the database URL
    assert settings.database_url == url


def test_database_url_defaults_to_a_local_sqlite_file() -> None:
    # given no DATABASE_URL
    # then the default is used (and differs from the value the previous test sets)
    assert Settings().database_url == "sqlite://data/custos.sqlite3"


def test_unknown_custos_env_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a CUSTOS_ENV that is neither development nor production
    monkeypatch.setenv("CUSTOS_ENV", "staging")
    # then reading the settings fails rather than silently meaning development
    with pytest.raises(ValidationError, match="env"):
        Settings()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"argon2_memory_kib": 19455}, "argon2_memory_kib", id="memory-below-floor"),
        pytest.param({"argon2_time_cost": 1}, "argon2_time_cost", id="time-cost-below-floor"),
        pytest.param({"argon2_parallelism": 0}, "argon2_parallelism", id="no-parallelism"),
    ],
)
def test_argon2_parameters_below_the_floor_are_refused(
    overrides: dict[str, int], field: str
) -> None:
    # given argon2 parameters below m=19 MiB, t=2, p=1
    # when settings are built
    with pytest.raises(ValidationError) as raised:
        Settings(**overrides)  # type: ignore[arg-type]
    # then the offending field is named
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]


def test_argon2_parameters_below_the_floor_are_refused_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given CUSTOS_ARGON2_MEMORY_KIB below the floor in the environment
    monkeypatch.setenv("CUSTOS_ARGON2_MEMORY_KIB", "8192")
    # then reading the settings fails
    with pytest.raises(ValidationError, match="argon2_memory_kib"):
        Settings()


def test_argon2_parameters_at_the_floor_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    # given exactly m=19456 KiB, t=2, p=1 from the environment
    monkeypatch.setenv("CUSTOS_ARGON2_MEMORY_KIB", "19456")
    monkeypatch.setenv("CUSTOS_ARGON2_TIME_COST", "2")
    monkeypatch.setenv("CUSTOS_ARGON2_PARALLELISM", "1")
    settings = Settings()
    # then they are used
    assert (
        settings.argon2_memory_kib,
        settings.argon2_time_cost,
        settings.argon2_parallelism,
    ) == (19456, 2, 1)


def test_mail_backend_defaults_to_console_in_development() -> None:
    settings = Settings(env="development")
    assert settings.mail_backend is None
    assert settings.effective_mail_backend == "console"


def test_mail_backend_defaults_to_smtp_in_production() -> None:
    settings = Settings(
        env="production", secret_key=SecretStr(RANDOM_KEY), public_url=PUBLIC_URL, **LIVE
    )
    assert settings.effective_mail_backend == "smtp"


def test_mail_backend_can_be_chosen_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    # given CUSTOS_MAIL_BACKEND=smtp in development
    monkeypatch.setenv("CUSTOS_MAIL_BACKEND", "smtp")
    # then the explicit choice wins over the default
    assert Settings().effective_mail_backend == "smtp"


@pytest.mark.parametrize("env", ["development", "production"])
def test_secrets_do_not_appear_in_repr_or_str(env: str) -> None:
    # given settings holding a secret key and an SMTP password
    smtp_password = "smtp-" + secrets.token_urlsafe(24)
    settings = Settings(
        env=env,  # type: ignore[arg-type]
        secret_key=SecretStr(RANDOM_KEY),
        smtp_password=SecretStr(smtp_password),
        public_url=PUBLIC_URL,
        **LIVE,  # type: ignore[arg-type]
    )
    # when they are rendered (as a log line or a traceback would)
    rendered = [repr(settings), str(settings), f"{settings}", repr(settings.model_dump())]
    # then neither secret shows
    for text in rendered:
        assert RANDOM_KEY not in text
        assert smtp_password not in text
    # while the value is still there for the code that needs it
    assert settings.secret_key.get_secret_value() == RANDOM_KEY


def test_settings_are_frozen() -> None:
    # given settings
    settings = Settings()
    # then they cannot be changed in place (variants are copies)
    with pytest.raises(ValidationError):
        settings.env = "production"  # type: ignore[misc]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("x" * 32, id="one-character"),
        pytest.param("x" * 64, id="one-character-long"),
        pytest.param("ab" * 24, id="two-characters"),
        pytest.param("abcd" * 12, id="four-characters"),
    ],
)
def test_production_with_a_low_entropy_key_is_refused(key: str) -> None:
    # given production and a key long enough but far from random
    # then validation fails with a message that says why and how to make one
    with pytest.raises(ValidationError, match=r"far from random.*token_urlsafe"):
        Settings(env="production", secret_key=SecretStr(key), public_url=PUBLIC_URL)


def test_random_hex_keys_of_32_characters_pass_the_entropy_check() -> None:
    for _ in range(200):
        key = secrets.token_hex(16)
        Settings(env="production", secret_key=SecretStr(key), public_url=PUBLIC_URL, **LIVE)


@pytest.mark.parametrize("url", ["http://shop.example", "shop.example", ""])
def test_production_needs_an_https_public_url(url: str) -> None:
    with pytest.raises(ValidationError, match="CUSTOS_PUBLIC_URL must be an https"):
        Settings(env="production", secret_key=SecretStr(RANDOM_KEY), public_url=url)
