"""The answer to an access request (policy section 5.1, docs/ARCHITECTURE.md: rights requests): one
JSON document with everything we hold about one customer and nothing about anyone else, described by
`docs/export.schema.json`, and a single-use, expiring link to it mailed to the customer.

Each section belongs to a data category; the officer's `include` decides each category once,
and a category not included is null in the document and named in `omitted`. Rows are read
with `.values()` (no model instances) in about a dozen queries, whatever the customer's
history: 10,000 visits build in a fraction of a second."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.audit.service import access_log
from api.clock import iso
from api.consent.state import ConsentState, consent_state
from api.errors import NotFound
from api.mail import templates
from api.mail.outbox import enqueue
from api.pagination import MAX_PAGE
from api.policy.book import load_policies
from api.recipients.service import shown_to_customer
from api.security.tokens import new_token, token_hash
from api.services import Services
from api.sharing.ledger import disclosures_of
from authz.registry import CONSENT_PURPOSES, Category
from models import (
    ConsentRecord,
    Customer,
    DataExport,
    OutboxMessage,
    PolicyAcceptance,
    RecipientNotice,
    RightsRequest,
    RightsTransition,
    Session,
    SupportCase,
    VisitEvent,
)

EXPORT_FORMAT = "custos.export/1"

Include = Callable[[str], bool]
"""Whether the officer may export a category (asks Casbin and logs the decision)."""

EXPORTED: tuple[Category, ...] = (
    Category.CONTACT_EMAIL,
    Category.CONTACT_PHONE,
    Category.CONTACT_ADDRESS,
    Category.CONSENT_HISTORY,
    Category.BEHAVIOR_BROWSING,
    Category.DEVICE_IP,
    Category.DEVICE_BROWSER,
    Category.SUPPORT_CASES,
    Category.RIGHTS_REQUESTS,
)
"""The categories an export holds, each asked of `include` once, in this order.
`account.credentials` is never exported (nor readable by anyone)."""

_CUSTOMER = (
    "id",
    "email",
    "email_verified_at",
    "pending_email",
    "phone",
    "address_line1",
    "address_line2",
    "address_city",
    "address_postal_code",
    "address_country",
    "created_at",
    "updated_at",
    "last_login_at",
)
_CONSENT = ("purpose", "granted", "source", "policy_version", "at", "ip_truncated", "user_agent")
_VISIT = (
    "at",
    "purpose",
    "page",
    "action",
    "referrer",
    "campaign",
    "browser",
    "os",
    "device_type",
    "language",
    "ip_full",
    "ip_truncated",
)
_REQUEST = (
    "id",
    "kind",
    "status",
    "channel",
    "submitted_at",
    "received_at",
    "due_at",
    "extended_at",
    "extension_reason",
    "decided_at",
    "decision_reason",
    "completed_at",
    "details",
    "changes",
    "before",
    "after",
    "outcome",
    "jurisdiction",
    "clock",
)
_TRANSITION = ("request_id", "from_status", "to_status", "at", "reason", "actor_kind")


async def build_export(*, customer_id: UUID, include: Include, now: datetime) -> dict[str, Any]:
    """Everything held about the customer, as one JSON-ready document (see
    docs/export.schema.json). Joins the caller's transaction when there is one. Raises
    NotFound for an unknown customer."""
    allowed = frozenset(c for c in EXPORTED if include(c.value))
    return {
        "format": EXPORT_FORMAT,
        "generatedAt": iso(now),
        "customer": await _customer(customer_id, allowed),
        **await _consent_sections(customer_id, allowed, now),
        "visits": await _visits(customer_id, allowed),
        "supportCases": await _support_cases(customer_id, allowed),
        "rightsRequests": await _rights_requests(customer_id, allowed, now),
        "sessions": await _sessions(customer_id),
        "messages": await _messages(customer_id, allowed),
        "disclosures": await _disclosures(customer_id, now),
        "accessLog": await _access_log(customer_id),
        "omitted": [c.value for c in EXPORTED if c not in allowed],
    }


async def _disclosures(customer_id: UUID, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "at": iso(d.at),
            "recipient": d.recipient,
            "categories": list(d.categories),
            "purpose": d.purpose or None,
            "legalBasis": d.legal_basis,
            "reference": d.reference,
        }
        for d in await disclosures_of(customer_id=customer_id, now=now)
    ]


async def _customer(customer_id: UUID, allowed: frozenset[Category]) -> dict[str, Any]:
    row = await Customer.filter(id=customer_id).first().values(*_CUSTOMER)
    if row is None:
        raise NotFound("No such customer.")
    email = Category.CONTACT_EMAIL in allowed
    return {
        "id": str(row["id"]),
        "email": row["email"] if email else None,
        "emailVerified": row["email_verified_at"] is not None,
        "emailVerifiedAt": iso(row["email_verified_at"]),
        "pendingEmail": row["pending_email"] if email else None,
        "phone": row["phone"] if Category.CONTACT_PHONE in allowed else None,
        "address": _address(row) if Category.CONTACT_ADDRESS in allowed else None,
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "lastLoginAt": iso(row["last_login_at"]),
    }


def _address(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "line1": row["address_line1"],
        "line2": row["address_line2"] or None,
        "city": row["address_city"],
        "postalCode": row["address_postal_code"],
        "country": row["address_country"],
    }


async def _consent_sections(
    customer_id: UUID, allowed: frozenset[Category], now: datetime
) -> dict[str, Any]:
    """`consents`, `consentHistory` and `policyAcceptances` (all `consent.history`)."""
    if Category.CONSENT_HISTORY not in allowed:
        return {"consents": None, "consentHistory": None, "policyAcceptances": None}
    history = (
        await ConsentRecord.filter(customer_id=customer_id).order_by("at", "id").values(*_CONSENT)
    )
    accepted = (
        await PolicyAcceptance.filter(customer_id=customer_id)
        .order_by("at", "id")
        .values("version", "at", "ip_truncated", "user_agent")
    )
    since = (await load_policies()).ask_again_since(now)
    return {
        "consents": _current_consents(history, since),
        "consentHistory": [_consent_record(r) for r in history],
        "policyAcceptances": [
            {
                "version": r["version"],
                "at": iso(r["at"]),
                "ipTruncated": r["ip_truncated"],
                "userAgent": r["user_agent"],
            }
            for r in accepted
        ],
    }


def _current_consents(
    history: list[dict[str, Any]], since: dict[str, datetime]
) -> list[dict[str, Any]]:
    """The state of every purpose that needs consent, by the rule `me { consents }` uses
    (a grant older than a material change of the purpose's scope is to be asked again)."""
    latest = {row["purpose"]: row for row in history}  # in time order: the last one wins
    states = []
    for purpose in sorted(CONSENT_PURPOSES):
        row = latest.get(purpose)
        record = ConsentRecord(granted=row["granted"], at=row["at"]) if row else None
        state = consent_state(record, ask_again_since=since.get(purpose))
        states.append(
            {
                "purpose": purpose,
                "state": state.value,
                "granted": state is ConsentState.GRANTED,
                "at": iso(row["at"]) if row else None,
                "source": row["source"] if row else None,
            }
        )
    return states


def _consent_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "purpose": row["purpose"],
        "granted": row["granted"],
        "source": row["source"],
        "policyVersion": row["policy_version"],
        "at": iso(row["at"]),
        "ipTruncated": row["ip_truncated"],
        "userAgent": row["user_agent"],
    }


async def _visits(customer_id: UUID, allowed: frozenset[Category]) -> list[dict[str, Any]] | None:
    """Every visit event (`behavior.browsing`); the IP is `device.ip` and the browser, OS,
    device type and language `device.browser`, each null when that category is omitted."""
    if Category.BEHAVIOR_BROWSING not in allowed:
        return None
    rows = await VisitEvent.filter(customer_id=customer_id).order_by("at", "id").values(*_VISIT)
    ip = Category.DEVICE_IP in allowed
    browser = Category.DEVICE_BROWSER in allowed
    return [_visit(row, ip=ip, browser=browser) for row in rows]


def _visit(row: dict[str, Any], *, ip: bool, browser: bool) -> dict[str, Any]:
    return {
        "at": iso(row["at"]),
        "purpose": row["purpose"],
        "page": row["page"],
        "action": row["action"],
        "referrer": row["referrer"],
        "campaign": row["campaign"],
        "browser": row["browser"] if browser else None,
        "os": row["os"] if browser else None,
        "deviceType": row["device_type"] if browser else None,
        "language": row["language"] if browser else None,
        "ip": (row["ip_full"] or row["ip_truncated"]) if ip else None,
    }


async def _support_cases(
    customer_id: UUID, allowed: frozenset[Category]
) -> list[dict[str, Any]] | None:
    if Category.SUPPORT_CASES not in allowed:
        return None
    rows = (
        await SupportCase.filter(customer_id=customer_id)
        .order_by("created_at", "id")
        .values("id", "subject", "message", "status", "created_at", "closed_at")
    )
    return [
        {
            "id": str(r["id"]),
            "subject": r["subject"],
            "message": r["message"],
            "status": r["status"],
            "createdAt": iso(r["created_at"]),
            "closedAt": iso(r["closed_at"]),
        }
        for r in rows
    ]


async def _rights_requests(
    customer_id: UUID, allowed: frozenset[Category], now: datetime
) -> list[dict[str, Any]] | None:
    """Every request with its transitions (two queries); never the code's digest, nor who
    on our staff decided (an employee id is not the customer's data)."""
    if Category.RIGHTS_REQUESTS not in allowed:
        return None
    rows = (
        await RightsRequest.filter(customer_id=customer_id)
        .order_by("submitted_at", "id")
        .values(*_REQUEST)
    )
    if not rows:
        return []
    steps = (
        await RightsTransition.filter(request_id__in=[r["id"] for r in rows])
        .order_by("at", "id")
        .values(*_TRANSITION)
    )
    by_request: dict[str, list[dict[str, Any]]] = {str(r["id"]): [] for r in rows}
    for step in steps:
        by_request[str(step["request_id"])].append(
            {
                "from": step["from_status"],
                "to": step["to_status"],
                "at": iso(step["at"]),
                "reason": step["reason"],
                "actorKind": step["actor_kind"],
            }
        )
    told = await _recipients(list(by_request), now)
    return [_rights_request(r, by_request[str(r["id"])], told[str(r["id"])]) for r in rows]


async def _recipients(request_ids: list[str], now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Who each request's data went to and was told, and their answers (one query); a
    recipient under a running non-disclosure order is left out until it ends."""
    found: dict[str, list[dict[str, Any]]] = {i: [] for i in request_ids}
    rows = await RecipientNotice.filter(request_id__in=request_ids).order_by("recipient", "id")
    for n in rows:
        if not shown_to_customer(n, now):
            continue
        found[str(n.request_id)].append(
            {
                "recipient": n.recipient,
                "categories": list(n.categories),
                "status": n.status,
                "outcome": n.outcome or None,
                "notifiedAt": iso(n.notified_at),
                "acknowledgedAt": iso(n.acknowledged_at),
            }
        )
    return found


def _rights_request(
    row: dict[str, Any], transitions: list[dict[str, Any]], recipients: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "status": row["status"],
        "channel": row["channel"],
        "submittedAt": iso(row["submitted_at"]),
        "receivedAt": iso(row["received_at"]),
        "dueAt": iso(row["due_at"]),
        "extendedAt": iso(row["extended_at"]),
        "extensionReason": row["extension_reason"],
        "decidedAt": iso(row["decided_at"]),
        "decisionReason": row["decision_reason"],
        "completedAt": iso(row["completed_at"]),
        "details": row["details"],
        "changes": row["changes"],
        "before": row["before"],
        "after": row["after"],
        "outcome": row["outcome"],
        "transitions": transitions,
        "jurisdiction": row["jurisdiction"],
        "clock": [_clock_event(e) for e in row["clock"] or []],
        "recipients": recipients,
    }


def _clock_event(entry: dict[str, Any]) -> dict[str, Any]:
    kept = ("event", "reason", "months", "days")
    return {
        "at": iso(datetime.fromisoformat(str(entry["at"]))),
        **{k: entry[k] for k in kept if k in entry},
    }


async def _sessions(customer_id: UUID) -> list[dict[str, Any]]:
    """Sign-in sessions: their times only (a session's token is never stored)."""
    rows = (
        await Session.filter(customer_id=customer_id)
        .order_by("created_at", "id")
        .values("created_at", "last_seen_at", "expires_at", "revoked_at")
    )
    return [
        {
            "createdAt": iso(r["created_at"]),
            "lastSeenAt": iso(r["last_seen_at"]),
            "expiresAt": iso(r["expires_at"]),
            "revokedAt": iso(r["revoked_at"]),
        }
        for r in rows
    ]


async def _messages(customer_id: UUID, allowed: frozenset[Category]) -> list[dict[str, Any]]:
    """Emails sent or queued to the customer: kind, subject and status, never the body (it
    may carry a one-time token, and is blanked once delivered); the address is
    `contact.email`."""
    rows = (
        await OutboxMessage.filter(customer_id=customer_id)
        .order_by("created_at", "id")
        .values("kind", "subject", "recipient", "status", "created_at", "sent_at")
    )
    email = Category.CONTACT_EMAIL in allowed
    return [
        {
            "kind": r["kind"],
            "subject": r["subject"],
            "recipient": r["recipient"] if email else None,
            "status": r["status"],
            "createdAt": iso(r["created_at"]),
            "sentAt": iso(r["sent_at"]),
        }
        for r in rows
    ]


async def _access_log(customer_id: UUID) -> list[dict[str, Any]]:
    """Staff requests that accessed the customer's data, as `me { accessLog }` shows them
    (roles and purpose, never the employee), oldest first."""
    entries, after = [], None
    while True:
        page = await access_log(customer_id=customer_id, first=MAX_PAGE, after=after)
        entries += page.items
        if not page.has_next:
            break
        after = page.cursors[-1]
    return [
        {
            "reference": e.reference,
            "at": iso(e.at),
            "roles": e.roles,
            "purpose": e.purpose,
            "categories": e.categories,
            "actions": e.actions,
            "decision": "allow",
        }
        for e in reversed(entries)
    ]


def serialize(document: dict[str, Any]) -> str:
    """Compact JSON text, UTF-8 characters kept as they are: what the download serves."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


async def issue_download(
    *,
    services: Services,
    request_id: UUID,
    customer_id: UUID,
    document: dict[str, Any],
    using_db: BaseDBAsyncClient | None = None,
) -> str:
    """Store the document behind a new single-use link valid for `export_days`, and queue the
    email announcing the link to the customer's address, both in the caller's transaction
    (`using_db`). Returns the raw token; only its SHA-256 is stored."""
    customer = await Customer.filter(id=customer_id).using_db(using_db).first().values("email")
    if customer is None:
        raise NotFound("No such customer.")
    now = services.clock.now()
    token = new_token()
    expires_at = now + timedelta(days=services.settings.export_days)
    await DataExport.create(
        request_id=request_id,
        customer_id=customer_id,
        token_hash=token_hash(token),
        document=serialize(document),
        created_at=now,
        expires_at=expires_at,
        using_db=using_db,
    )
    await enqueue(
        mail=templates.export_ready(settings=services.settings, token=token, expires_at=expires_at),
        recipient=customer["email"],
        customer_id=customer_id,
        clock=services.clock,
        using_db=using_db,
    )
    return token
