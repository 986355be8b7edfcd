"""One typed settings object, read from the environment (docs/ARCHITECTURE.md: configuration,
principle 6)."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.security.origins import origin_of

DEVELOPMENT_SECRET = "development-only-insecure-secret-key-change-me"  # noqa: S105
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", DEVELOPMENT_SECRET}

# docs/ARCHITECTURE.md: security floor: argon2id with at least m=19 MiB, t=2, p=1.
ARGON2_MIN_MEMORY_KIB = 19 * 1024
ARGON2_MIN_TIME_COST = 2

# A secret key's estimated strength (see estimated_entropy_bits):
# 32 random hex characters measure 95 to 128 bits, 48 of `token_urlsafe` about 250, and 32
# times one character 0.
MIN_SECRET_BITS = 80


def estimated_entropy_bits(secret: str) -> float:
    """The lower of two estimates: the characters' Shannon entropy times the length, and
    what deflate leaves of a repeated pattern (`abcd` twelve times)."""
    counts = Counter(secret)
    shannon = -sum(n * math.log2(n / len(secret)) for n in counts.values())
    data = secret.encode()
    patterned = 8 * (len(zlib.compress(data, 9)) - len(zlib.compress(b"", 9)))
    return min(shannon, float(patterned))


def secret_weakness(secret: str) -> str | None:
    """Why a key is too weak for production (placeholder, short, patterned), or None."""
    if secret.strip().lower() in _PLACEHOLDERS or len(secret) < 32:
        return "is a placeholder or shorter than 32 characters"
    if estimated_entropy_bits(secret) < MIN_SECRET_BITS:
        return f"looks far from random (at least {MIN_SECRET_BITS} bits needed)"
    return None


def policy_file_text(path: Path) -> str:
    """The text of the shop's policy file (CUSTOS_POLICY_FILE); ValueError naming the
    problem when it is missing, unreadable, not UTF-8 or empty."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ValueError(f"CUSTOS_POLICY_FILE: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"CUSTOS_POLICY_FILE: {path} cannot be read ({exc})") from None
    if not text.strip():
        raise ValueError(f"CUSTOS_POLICY_FILE: {path} is empty")
    return text


@dataclass(frozen=True, slots=True)
class Controller:
    """The controller's name and contact, and its data protection officer's contact."""

    name: str
    contact: str
    dpo: str


# Development only: production requires CUSTOS_CONTROLLER_NAME, _CONTACT and CUSTOS_DPO_CONTACT.
DEMO_CONTROLLER = Controller(
    name="Custos Demo Shop Ltd", contact="privacy@shop.example", dpo="dpo@shop.example"
)


MIN_METRICS_TOKEN = 16
"""The shortest `CUSTOS_METRICS_TOKEN` accepted: a scraper's bearer token is a secret."""

# One plain mailbox (it goes into a mail header): no spaces, brackets, commas or quotes.
_MAILBOX = r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+$"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOS_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = "development"
    database_url: str = Field(
        default="sqlite://data/custos.sqlite3",
        validation_alias=AliasChoices("DATABASE_URL", "CUSTOS_DATABASE_URL"),
    )
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    public_url: str = "http://127.0.0.1:8000"
    # The privacy centre: the path its pages are served under, and the pages a shop serves
    # itself (page name to absolute URL, a JSON object: '{"sign-in": "https://shop/login"}'),
    # which mails then link to instead (api/mail/links.py).
    privacy_centre_path: str = Field(default="/privacy", pattern=r"^/[a-z0-9/_-]*$")
    page_urls: dict[str, str] = Field(default_factory=dict)
    # How the privacy centre's pages look (api/privacy_centre/): the shop's name, its logo
    # (a path on this site, an address of the public URL's origin, or a data:image URI: the
    # pages load nothing from elsewhere), its primary colour (#rrggbb) and the address
    # customers write to for help (shown on every page when set).
    shop_name: str = Field(default="Custos Demo Shop", min_length=1, max_length=100)
    shop_logo_url: str | None = Field(default=None, max_length=64 * 1024)
    shop_primary_colour: str = Field(default="#1f5f8b", pattern=r"^#[0-9a-fA-F]{6}$")
    shop_support_email: str | None = Field(default=None, pattern=_MAILBOX)
    demo: bool = False

    # Mail: "console" prints messages (development), "smtp" delivers them.
    mail_backend: Literal["console", "smtp"] | None = None
    mail_from: str = "Custos <no-reply@custos.invalid>"
    mail_poll_seconds: float = 2.0
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Mail delivery (issue 15): a sender holds each claimed message under a short lease that
    # it renews while it lives (a crashed sender's claims are free again within a lease); a
    # message that fails is retried with capped exponential backoff for a time budget, then
    # kept as dead, content and all, until an operator requeues or purges it.
    mail_lease_seconds: float = Field(default=30.0, gt=0)
    mail_claim_batch: int = Field(default=20, ge=1)
    mail_retry_hours: float = Field(default=96.0, gt=0)
    mail_backoff_seconds: float = Field(default=30.0, gt=0)
    mail_backoff_max_seconds: float = Field(default=3600.0, gt=0)

    # Recipient notices (api/recipients/): a webhook's answer is awaited this long; a signed
    # acknowledgement is accepted within this many seconds of its timestamp; a notice
    # delivered and not acknowledged is sent again after `recipient_chase_hours`, and
    # escalated to the privacy officers after `recipient_chases` sendings or once its
    # request's due date is `recipient_escalate_days` away, whichever comes first.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    recipient_ack_tolerance_seconds: int = Field(default=300, ge=30, le=3600)
    recipient_chase_hours: float = Field(default=72.0, gt=0)
    recipient_chases: int = Field(default=3, ge=1, le=20)
    recipient_escalate_days: float = Field(default=7.0, ge=0)

    # Access policy: how often each process compares its policy version with the database
    # (the fallback behind PostgreSQL LISTEN/NOTIFY, and the only signal on SQLite).
    policy_poll_seconds: float = Field(default=1.0, gt=0)
    # How long a process reuses a resolved session (api/security/sessions.py): a logout or
    # deactivation in another process reaches this one within it; 0 looks up every time.
    viewer_cache_seconds: float = Field(default=1.0, ge=0, le=2)

    # Sessions: absolute lifetime and idle timeout, per kind of account.
    customer_session_hours: float = 24 * 30
    customer_idle_minutes: float = 60 * 24 * 7
    staff_session_hours: float = 12
    staff_idle_minutes: float = 30
    email_token_hours: float = 48
    # How long a mailed password-reset link works (api/customers/recovery.py): short, since
    # whoever holds the link may set the password.
    password_reset_minutes: int = Field(default=30, ge=1, le=24 * 60)

    # Passwords (argon2-cffi PasswordHasher defaults unless set).
    argon2_time_cost: int = Field(default=3, ge=ARGON2_MIN_TIME_COST)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=ARGON2_MIN_MEMORY_KIB)
    argon2_parallelism: int = Field(default=1, ge=1)
    hash_workers: int = Field(default=0, ge=0, description="0 means one per usable core")
    # The hashing queue (issue 15, point 6): password operations that may wait for a hash
    # worker, counted separately for sign-ins and for new hashes (0 means 16 per worker), and
    # the longest wait admitted, estimated from recent hashes (0: only the count bounds it).
    # Past either, sign-in, registration and password changes answer RATE_LIMITED with
    # Retry-After (after 0.5 s) instead of queueing.
    hash_queue_max: int = Field(default=0, ge=0)
    hash_queue_seconds: float = Field(default=2.0, ge=0)

    # Login throttling: failures allowed within the window, per account and per IP.
    login_window_seconds: int = 900
    login_max_failures_account: int = 5
    login_max_failures_ip: int = 50
    # Mail that a request can cause (api/security/mail_limits.py), per fixed window: mails of
    # one kind to one address (more are silently not queued), and mail-sending requests per
    # client IP (more are refused with RATE_LIMITED).
    mail_window_seconds: int = Field(default=3600, ge=60)
    mail_max_per_recipient: int = Field(default=3, ge=1)
    mail_max_requests_ip: int = Field(default=30, ge=1)

    # Visit beacons (`POST /collect`): per visitor and process, and the visitor id cookie's
    # lifetime (13 months).
    collect_per_minute: int = Field(default=120, ge=1)
    visitor_cookie_days: int = Field(default=395, ge=1)
    # Origins whose pages may send beacons besides `public_url`'s own, which always may; in the
    # environment a JSON list: CUSTOS_COLLECT_ORIGINS='["https://shop.example"]'.
    collect_origins: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _collect_origins_are_origins(self) -> Settings:
        """Each is compared with the browser's `Origin` header as it is, so a path, a trailing
        slash or capitals would silently never match: refuse them at start-up instead."""
        for origin in self.collect_origins:
            if origin_of(origin) != origin:
                raise ValueError(
                    f"CUSTOS_COLLECT_ORIGINS: {origin!r} is not an origin such as "
                    "https://shop.example (scheme and host, a port only if not the default; "
                    "no path, no trailing slash, lower case)"
                )
        return self

    # Privacy policy versions: a material change takes effect at least `policy_notice_days`
    # after publication; its notice emails are queued `policy_notice_batch` per transaction;
    # each process re-reads the versions when its copy is older than `policy_cache_seconds`.
    policy_notice_days: int = Field(default=30, ge=0)
    policy_notice_batch: int = Field(default=500, ge=1, le=10_000)
    policy_cache_seconds: float = Field(default=5.0, ge=0)

    # Access policy changes that may widen access are proposals (api/access/proposals.py):
    # they expire `policy_proposal_days` after they are made; their what-if replays the
    # access decisions of the last `policy_what_if_days` days unless asked otherwise.
    policy_proposal_days: int = Field(default=7, ge=1, le=90)
    policy_what_if_days: int = Field(default=30, ge=1, le=366)

    # Insights: the minimum number of people in a group shown (k-anonymity).
    insights_min_group: int = Field(default=5, ge=2)

    # Access requests: how long an export's single-use download link works.
    export_days: int = Field(default=7, ge=1)
    # Requests by email address are answered at once and handled by the intake worker,
    # every this many seconds (api/rights/intake.py), so the answer's time tells nothing.
    intake_poll_seconds: float = Field(default=2.0, gt=0)

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
    # The law whose deadline a rights request follows when the customer's country has none
    # of its own (api/rights/deadlines.py: GDPR, UK_GDPR or CCPA).
    rights_default_jurisdiction: Literal["GDPR", "UK_GDPR", "CCPA"] = "GDPR"
    # A request by email address repeated while one of its kind is open mails a fresh code
    # only once the last one is this old (the code's own life by default; 0: every time,
    # within the mail limits).
    rights_repeat_window_minutes: float = Field(default=15, ge=0, le=7 * 24 * 60)

    # The decision log's Merkle tree and signed checkpoints (docs/AUDIT_LOG.md). The log's
    # name is its checkpoints' origin and its signing key's name (unset: the public URL's
    # host and path, then "/audit-log"). The signing keys' private parts live in
    # `audit_key_dir`, never in the database; checkpoints are also written to
    # `audit_checkpoint_dir` (empty: not written). Each server brings new rows into the
    # tree every `audit_integrate_seconds` (0: never; proofs and `custos audit checkpoint`
    # still do) and signs a checkpoint when the last is `audit_checkpoint_seconds` old and
    # the log grew.
    audit_log_origin: str | None = Field(default=None, pattern=r"^[!-*,-~]{1,200}$")
    audit_key_dir: str = "data/audit-keys"
    audit_checkpoint_dir: str = "data/checkpoints"
    audit_integrate_seconds: float = Field(default=1.0, ge=0)
    audit_checkpoint_seconds: float = Field(default=60.0, ge=0)

    # GraphQL and HTTP limits.
    max_body_bytes: int = 64 * 1024
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    # Fields the document would resolve once (fragments expanded), and its cost: values the
    # answer could hold, where `first` multiplies what a page selects (api/query_cost.py).
    max_query_fields: int = Field(default=250, ge=1)
    max_query_cost: int = Field(default=50_000, ge=1)
    # Seconds a request may take to send its body, and to be answered once it has.
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    request_deadline_seconds: float = Field(default=30.0, gt=0)

    # Going live (issue 17): the privacy policy text of the shop, seeded as version 1 by
    # `custos migrate` (the bundled demo text is for development only; production refuses
    # to start without a readable, non-empty file).
    policy_file: Path | None = None
    # The controller (GDPR Article 30: name and contact details, and the DPO's) shown in the
    # processing record and on the policy; required in production, demo values otherwise.
    controller_name: str | None = Field(default=None, max_length=200)
    controller_contact: str | None = Field(default=None, max_length=320)
    dpo_contact: str | None = Field(default=None, max_length=320)
    # Secret-key rotation: keys used before `secret_key`, accepted for verifying what was
    # signed with them (unsubscribe links in mail already sent), never for signing. In the
    # environment a JSON list: CUSTOS_PREVIOUS_SECRET_KEYS='["old-key"]'.
    previous_secret_keys: tuple[SecretStr, ...] = ()

    @property
    def controller(self) -> Controller:
        """Who is responsible for the processing; demo values outside production."""
        return Controller(
            name=self.controller_name or DEMO_CONTROLLER.name,
            contact=self.controller_contact or DEMO_CONTROLLER.contact,
            dpo=self.dpo_contact or DEMO_CONTROLLER.dpo,
        )

    # Observability (docs/OBSERVABILITY.md). `GET /metrics` is served unless
    # `metrics_enabled` is false; with `metrics_token` set it needs `Authorization: Bearer
    # <token>`, without one it answers loopback clients only. Logs are JSON or text; unset,
    # JSON in production and text in development.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    log_format: Literal["json", "text"] | None = None

    @field_validator("page_urls")
    @classmethod
    def _page_urls_are_absolute(cls, value: dict[str, str]) -> dict[str, str]:
        for page, url in value.items():
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"CUSTOS_PAGE_URLS: the address of {page!r} must be absolute")
        return value

    @model_validator(mode="after")
    def _logo_is_on_this_site(self) -> Settings:
        """The pages' Content-Security-Policy loads images from their own origin and data:
        URIs only: a logo elsewhere would never show, so refuse it at start-up."""
        logo = self.shop_logo_url
        if logo is None:
            return self
        on_site = logo.startswith("/") and not logo.startswith("//")
        same_origin = origin_of(logo) is not None and origin_of(logo) == origin_of(self.public_url)
        if not (on_site or same_origin or logo.startswith("data:image/")):
            raise ValueError(
                "CUSTOS_SHOP_LOGO_URL must be a path on this site (/logo.png), an address of "
                "CUSTOS_PUBLIC_URL's origin, or a data:image/ URI"
            )
        return self

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_metrics_token_is_none(cls, value: object) -> object:
        """`CUSTOS_METRICS_TOKEN=` (as a compose file may leave it) means no token."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _metrics_token_is_long_enough(self) -> Settings:
        token = self.metrics_token
        if token is not None and len(token.get_secret_value().strip()) < MIN_METRICS_TOKEN:
            raise ValueError(
                f"CUSTOS_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters "
                "(unset it to serve /metrics to loopback clients only)"
            )
        return self

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.production else "text"

    @property
    def effective_audit_log_origin(self) -> str:
        if self.audit_log_origin:
            return self.audit_log_origin
        address = urlsplit(self.public_url)
        return f"{address.netloc}{address.path.rstrip('/')}/audit-log"

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
        make_one = "make one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        if secret.strip().lower() in _PLACEHOLDERS or len(secret) < 32:
            raise ValueError(
                "CUSTOS_SECRET_KEY must be set to a random value of at least 32 characters "
                f"outside development; {make_one}"
            )
        if estimated_entropy_bits(secret) < MIN_SECRET_BITS:
            raise ValueError(
                f"CUSTOS_SECRET_KEY looks far from random (about "
                f"{estimated_entropy_bits(secret):.0f} bits, at least {MIN_SECRET_BITS} "
                f"needed): repeated or patterned characters are guessable; {make_one}"
            )
        if not self.public_url.startswith("https://"):
            raise ValueError(
                "CUSTOS_PUBLIC_URL must be an https:// address in production: links in mail "
                "carry one-time tokens, and session cookies are Secure"
            )
        if self.demo:
            raise ValueError("CUSTOS_DEMO is only allowed in development")
        return self

    @model_validator(mode="after")
    def _ready_to_go_live(self) -> Settings:
        """Production needs the shop's own policy text, its controller and DPO, and previous
        keys as strong as the secret key; a policy file that is set must be usable anywhere."""
        if self.policy_file is not None:
            policy_file_text(self.policy_file)  # raises ValueError with the reason
        if not self.production:
            return self
        if self.policy_file is None:
            raise ValueError(
                "CUSTOS_POLICY_FILE must name the shop's privacy policy text (UTF-8) in "
                "production: the bundled text is a demo"
            )
        missing = [
            f"CUSTOS_{name.upper()}"
            for name in ("controller_name", "controller_contact", "dpo_contact")
            if not (getattr(self, name) or "").strip()
        ]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} must be set in production: the controller and its data "
                "protection officer are named in the processing record and on the policy"
            )
        for n, key in enumerate(self.previous_secret_keys):
            weakness = secret_weakness(key.get_secret_value())
            if weakness:
                raise ValueError(f"CUSTOS_PREVIOUS_SECRET_KEYS[{n}] {weakness}")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
