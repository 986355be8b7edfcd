"""One typed settings object, read from the environment (DESIGN section 9, principle 6)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-insecure-secret-key-change-me"  # noqa: S105
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", DEVELOPMENT_SECRET}

# DESIGN section 7: argon2id with at least m=19 MiB, t=2, p=1.
ARGON2_MIN_MEMORY_KIB = 19 * 1024
ARGON2_MIN_TIME_COST = 2

# One plain mailbox (it goes into a mail header): no spaces, brackets, commas or quotes.
_MAILBOX = r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+$"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOS_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    database_url: str = Field(
        default="sqlite://custos.sqlite3",
        validation_alias=AliasChoices("DATABASE_URL", "CUSTOS_DATABASE_URL"),
    )
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    public_url: str = "http://127.0.0.1:8000"
    demo: bool = False

    # Mail: "console" prints messages (development), "smtp" delivers them.
    mail_backend: Literal["console", "smtp"] | None = None
    mail_from: str = "Custos <no-reply@custos.invalid>"
    mail_poll_seconds: float = 2.0
    mail_max_attempts: int = 5
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Access policy: how often each process compares its policy version with the database
    # (the fallback behind PostgreSQL LISTEN/NOTIFY, and the only signal on SQLite).
    policy_poll_seconds: float = Field(default=1.0, gt=0)

    # Sessions: absolute lifetime and idle timeout, per kind of account.
    customer_session_hours: float = 24 * 30
    customer_idle_minutes: float = 60 * 24 * 7
    staff_session_hours: float = 12
    staff_idle_minutes: float = 30
    email_token_hours: float = 48

    # Passwords (argon2-cffi PasswordHasher defaults unless set).
    argon2_time_cost: int = Field(default=3, ge=ARGON2_MIN_TIME_COST)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=ARGON2_MIN_MEMORY_KIB)
    argon2_parallelism: int = Field(default=4, ge=1)
    hash_workers: int = Field(default=0, ge=0, description="0 means one per CPU core")

    # Login throttling: failures allowed within the window, per account and per IP.
    login_window_seconds: int = 900
    login_max_failures_account: int = 5
    login_max_failures_ip: int = 50

    # Visit beacons (`POST /collect`): per visitor and process, and the visitor id cookie's
    # lifetime (13 months).
    collect_per_minute: int = Field(default=120, ge=1)
    visitor_cookie_days: int = Field(default=395, ge=1)

    # Privacy policy versions: a material change takes effect at least `policy_notice_days`
    # after publication; its notice emails are queued `policy_notice_batch` per transaction;
    # each process re-reads the versions when its copy is older than `policy_cache_seconds`.
    policy_notice_days: int = Field(default=30, ge=0)
    policy_notice_batch: int = Field(default=500, ge=1, le=10_000)
    policy_cache_seconds: float = Field(default=5.0, ge=0)

    # Insights: the minimum number of people in a group shown (k-anonymity).
    insights_min_group: int = Field(default=5, ge=2)

    # Access requests: how long an export's single-use download link works.
    export_days: int = Field(default=7, ge=1)

    # Marketing email: how long the signed unsubscribe link in a message keeps working (in
    # months, so links in old mails still do), and an optional mailbox offered as a second,
    # `mailto:` List-Unsubscribe method.
    unsubscribe_token_days: int = Field(default=400, ge=30)
    unsubscribe_mailto: str | None = Field(default=None, pattern=_MAILBOX)

    # Campaigns: customers considered per queueing transaction, and the delivery rate
    # (messages are scheduled this many a second).
    campaign_batch: int = Field(default=500, ge=1, le=10_000)
    campaign_per_second: float = Field(default=50.0, gt=0)

    # Retention: rows purged per transaction, and the background schedule's period in
    # seconds (0 turns it off; `custos retention run` still works).
    retention_batch: int = Field(default=1000, ge=1, le=100_000)
    retention_interval_seconds: float = Field(default=6 * 3600, ge=0)

    # GraphQL and HTTP limits.
    max_body_bytes: int = 64 * 1024
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def effective_mail_backend(self) -> Literal["console", "smtp"]:
        if self.mail_backend is not None:
            return self.mail_backend
        return "smtp" if self.production else "console"

    @model_validator(mode="after")
    def _secrets_are_real_outside_development(self) -> Settings:
        if self.env == "development":
            return self
        secret = self.secret_key.get_secret_value()
        if secret.strip().lower() in _PLACEHOLDERS or len(secret) < 32:
            raise ValueError(
                "CUSTOS_SECRET_KEY must be set to a random value of at least 32 characters "
                "outside development; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        if self.demo:
            raise ValueError("CUSTOS_DEMO is only allowed in development")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
