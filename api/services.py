"""The long-lived parts of one process, built once by `create_app` (or the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from api.clock import Clock, SystemClock
from api.mail.outbox import use_limits
from api.mail.sender import MailBackend, backend_for
from api.policy.book import PolicyBook
from api.security.mail_limits import MailLimits
from api.security.passwords import PasswordService
from api.security.secret_keys import SigningKey
from api.security.sessions import SessionService
from api.security.throttle import LoginThrottle
from api.settings import Settings
from api.visits.ratelimit import BeaconLimiter
from authz.audit import GroupCommit
from authz.enforcer import Authorizer


@dataclass
class Services:
    settings: Settings
    clock: Clock
    passwords: PasswordService
    sessions: SessionService
    throttle: LoginThrottle
    mail: MailBackend
    beacons: BeaconLimiter
    policies: PolicyBook
    """The privacy policy versions (a per-process copy) and the clock that decides."""
    mail_limits: MailLimits
    """How much mail a request may cause, per recipient and per client IP."""
    audit_writer: GroupCommit = field(default_factory=GroupCommit)
    gpc_recorded: set[UUID] = field(default_factory=set)
    """Customers whose Global Privacy Control opt-out this process knows is recorded."""
    _authorizer: Authorizer | None = None

    @property
    def authorizer(self) -> Authorizer:
        if self._authorizer is None:
            raise RuntimeError("the access policy is not loaded (call load_authorizer)")
        return self._authorizer

    async def policy_changed(self) -> None:
        """A change this process made to the access policy or to who holds which role
        (after its commit): this process enforces it at once; the others follow the
        policy version (authz/watcher.py). A process that enforces nothing (the CLI)
        has nothing to reload."""
        if self._authorizer is not None:
            await self._authorizer.reload()

    async def load_authorizer(self) -> Authorizer:
        """Load the enforcer from the database; refuse when enforcement is off or empty."""
        authorizer = await Authorizer.load()
        authorizer.ensure_enforcing()
        self._authorizer = authorizer
        return authorizer

    @property
    def secret(self) -> str:
        """The secret key: it signs and keys digests. As a `SigningKey` it also carries the
        previous keys (CUSTOS_PREVIOUS_SECRET_KEYS) that verifiers of mailed links accept
        (`api.security.secret_keys.verifying_keys`)."""
        return SigningKey(
            self.settings.secret_key.get_secret_value(),
            previous=[k.get_secret_value() for k in self.settings.previous_secret_keys],
        )

    def close(self) -> None:
        self.passwords.close()


def build_services(
    settings: Settings, *, clock: Clock | None = None, mail: MailBackend | None = None
) -> Services:
    clock = clock or SystemClock()
    mail_limits = MailLimits.from_settings(settings)
    use_limits(mail_limits)  # the outbox applies the per-recipient limit to every mail
    return Services(
        settings=settings,
        clock=clock,
        passwords=PasswordService(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            workers=settings.hash_workers,
            queue_max=settings.hash_queue_max,
            max_wait_seconds=settings.hash_queue_seconds,
        ),
        sessions=SessionService(settings=settings, clock=clock),
        throttle=LoginThrottle(settings=settings, clock=clock),
        mail=mail or backend_for(settings),
        beacons=BeaconLimiter(per_minute=settings.collect_per_minute, clock=clock),
        policies=PolicyBook(clock=clock, max_age_seconds=settings.policy_cache_seconds),
        mail_limits=mail_limits,
    )
