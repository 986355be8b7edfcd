"""Privacy policy versions (policy section 7): publish, read, accept.

A version is never edited once published. A material one takes effect at least
`policy_notice_days` after publication, is announced by email (api/policy/notices.py), and
once in effect asks again for the consents of the purposes whose scope it changed
(api/consent/state.py). A non-material one just gets a new version and date."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.clock import as_utc
from api.customers import validation as v
from api.errors import FieldProblem, InputInvalid
from api.policy.book import FIRST_VERSION, PolicyEntry
from api.security.network import truncate_ip
from api.serial import lock_customer
from api.services import Services
from api.settings import Settings, get_settings, policy_file_text
from authz.registry import PURPOSES
from models import PolicyAcceptance, PrivacyPolicy

if TYPE_CHECKING:
    from api.customers.service import RequestMeta

_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_SUMMARY_MAX = 2000
# Any constant: the advisory lock that serialises publications on PostgreSQL (SQLite
# serialises writers itself).
_PUBLISH_LOCK = 0x637573746F7370


@dataclass(frozen=True, slots=True)
class PolicyDraft:
    """A version as the legal team submits it."""

    version: str
    effective_at: datetime
    material: bool
    summary: str
    text: str
    changed_purposes: list[str]


@dataclass(frozen=True, slots=True)
class Acceptance:
    policy: PolicyEntry
    at: datetime
    changed: bool


def demo_text() -> str:
    """The bundled example policy (api/policy/privacy-policy.txt): development only."""
    return resources.files("api.policy").joinpath("privacy-policy.txt").read_text("utf-8")


def initial_text(settings: Settings | None = None) -> str:
    """The policy text the shop starts with (the seeded first version): its own file
    (CUSTOS_POLICY_FILE) when set, which production requires; the bundled demo text only
    in development. Never the demo text in production, even if validation was bypassed."""
    settings = settings or get_settings()
    if settings.policy_file is not None:
        return policy_file_text(settings.policy_file)
    if settings.production:
        raise RuntimeError("CUSTOS_POLICY_FILE is required in production")
    return demo_text()


async def seed_first_version(*, now: datetime, settings: Settings | None = None) -> bool:
    """Version 1 (non-material, in effect from `now`) when no version exists yet; True when
    it was written. Its text is `initial_text(settings)` (default: this process's settings,
    as `custos migrate` reads them)."""
    if await PrivacyPolicy.exists():
        return False
    await PrivacyPolicy.bulk_create(
        [
            PrivacyPolicy(
                version=FIRST_VERSION,
                effective_at=now,
                published_at=now,
                published_by=None,
                material=False,
                summary="Initial policy",
                text=initial_text(settings),
                changed_purposes=[],
                notice_done=True,
            )
        ],
        ignore_conflicts=True,
    )
    return True


def _check_draft(*, p: v.Problems, draft: PolicyDraft, now: datetime, notice_days: int) -> None:
    """The checks that need no database."""
    if not _VERSION.match(draft.version):
        p.add("version", "1 to 32 letters, digits, dots, underscores or hyphens.")
    if not draft.summary.strip():
        p.add("summary", "This field is required.")
    elif len(draft.summary) > _SUMMARY_MAX:
        p.add("summary", f"Use at most {_SUMMARY_MAX} characters.")
    if not draft.text.strip():
        p.add("text", "This field is required.")
    for i, purpose in enumerate(draft.changed_purposes):
        if purpose not in PURPOSES:
            p.add(
                f"changedPurposes.{i}",
                f"Unknown purpose; known: {', '.join(sorted(PURPOSES))}.",
            )
    if draft.changed_purposes and not draft.material:
        p.add(
            "changedPurposes",
            "A change of a purpose's scope is a material change: set material to true.",
        )
    if draft.effective_at < now:
        p.add("effectiveAt", "The effective date must not be in the past.")
    elif draft.material and draft.effective_at < now + timedelta(days=notice_days):
        p.add(
            "effectiveAt",
            f"A material change takes effect at least {notice_days} days after publication.",
            "EFFECTIVE_TOO_SOON",
        )


async def _check_against_published(
    *, p: v.Problems, conn: BaseDBAsyncClient, version: str, effective_at: datetime
) -> None:
    if await PrivacyPolicy.filter(version=version).using_db(conn).exists():
        p.add("version", "This version is already published.", "DUPLICATE_VERSION")
    latest = await PrivacyPolicy.all().using_db(conn).order_by("-effective_at").first()
    dated = any(problem.field == "effectiveAt" for problem in p.items)
    if latest is not None and effective_at <= latest.effective_at and not dated:
        p.add(
            "effectiveAt",
            "The effective date must be later than that of the latest version "
            f"({latest.version}, {latest.effective_at.isoformat()}).",
        )


async def publish_policy(
    *, services: Services, draft: PolicyDraft, published_by: UUID | None
) -> PolicyEntry:
    """Record a new version, or raise InputInvalid with every problem (nothing stored).
    A material version's notices are queued later (`queue_policy_notices`)."""
    now = services.clock.now()
    draft = replace(draft, effective_at=as_utc(draft.effective_at))
    p = v.Problems()
    _check_draft(p=p, draft=draft, now=now, notice_days=services.settings.policy_notice_days)
    try:
        async with in_transaction() as conn:
            if conn.capabilities.dialect == "postgres":
                await conn.execute_query(f"SELECT pg_advisory_xact_lock({_PUBLISH_LOCK})")
            await _check_against_published(
                p=p, conn=conn, version=draft.version, effective_at=draft.effective_at
            )
            p.raise_if_any()
            row = await PrivacyPolicy.create(
                version=draft.version,
                effective_at=draft.effective_at,
                published_at=now,
                published_by=published_by,
                material=draft.material,
                summary=draft.summary.strip(),
                text=draft.text,
                changed_purposes=sorted(set(draft.changed_purposes)),
                notice_cursor=None,
                notice_done=not draft.material,
                notices_queued=0,
                using_db=conn,
            )
    except IntegrityError:  # published at the same moment elsewhere
        problem = FieldProblem("version", "DUPLICATE_VERSION", "This version is already published.")
        raise InputInvalid([problem]) from None
    services.policies.invalidate()
    return PolicyEntry.from_model(row)


async def policy_history(*, services: Services) -> list[PolicyEntry]:
    """Every published version, newest first (those not yet in effect included)."""
    return (await services.policies.policies()).newest_first()


async def accept_policy(
    *, services: Services, customer_id: UUID, version: str, meta: RequestMeta
) -> Acceptance:
    """Record that the customer accepted a version in effect (once; again is a no-op)."""
    now = services.clock.now()
    entry = (await services.policies.policies()).find(version)
    if entry is None:  # perhaps just published by another process
        entry = (await services.policies.policies(fresh=True)).find(version)
    if entry is None:
        raise InputInvalid([FieldProblem("version", "UNKNOWN_VERSION", "No such version.")])
    if not entry.in_effect(now):
        message = f"This version takes effect on {entry.effective_at.isoformat()}."
        raise InputInvalid([FieldProblem("version", "NOT_IN_EFFECT", message)])
    async with in_transaction() as conn:
        # Two requests at once: the second waits here and answers `changed: false` (the
        # unique (customer, version) alone kept one row, but both answered `changed`).
        await lock_customer(conn, customer_id)
        found = PolicyAcceptance.filter(customer_id=customer_id, version=version).using_db(conn)
        existing = await found.first()
        if existing is not None:
            return Acceptance(policy=entry, at=existing.at, changed=False)
        row = PolicyAcceptance(
            customer_id=customer_id,
            version=version,
            at=now,
            ip_truncated=truncate_ip(meta.ip),
            user_agent=(meta.user_agent or "")[:300] or None,
        )
        # The unique (customer, version) stays the last guard.
        await PolicyAcceptance.bulk_create([row], ignore_conflicts=True, using_db=conn)
        saved = await found.get()
    return Acceptance(policy=entry, at=saved.at, changed=True)


async def pending_policy(
    *, services: Services, customer_id: UUID, customer_since: datetime
) -> PolicyEntry | None:
    """The version in force, when a material version took effect after the customer
    registered and they have accepted neither it nor a later version; else None."""
    now = services.clock.now()
    policies = await services.policies.policies()
    material = policies.latest_material(now)
    if material is None or material.effective_at <= customer_since:
        return None
    covering = [
        e.version for e in policies.in_force(now) if e.effective_at >= material.effective_at
    ]
    accepted = await PolicyAcceptance.filter(customer_id=customer_id, version__in=covering).exists()
    return None if accepted else policies.current(now)
