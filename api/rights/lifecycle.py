"""The life of a rights request (docs/ARCHITECTURE.md: rights requests):

    unverified -> pending -> approved | refused -> in_progress -> [notifying ->] completed
    plus extended (once, before the due date) and cancelled (by the customer)

An erasure or rectification whose data had recipients waits in `notifying` until each has
acknowledged the notice it was sent, or an officer recorded why not (api/recipients/).

Every transition is recorded (who, when, why) and announced by email through the outbox in
the same transaction. The deadline follows the law of the customer's country
(api/rights/deadlines.py): its clock starts when the request is submitted and, where that
law says so (GDPR), stands until the requester proves their identity with the code mailed
to the account's address."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.mail import templates
from api.mail.outbox import Mail, enqueue
from api.rights import deadlines, perform, rectification
from api.rights.rules import (
    CLOSED,
    CODE_ATTEMPTS,
    CODE_MINUTES,
    REPEATABLE,
    RUNNING,
    Kind,
    RightsProblem,
    Status,
    code_digest,
    code_matches,
    new_code,
)
from api.serial import lock_customer
from api.services import Services
from models import Customer, RightsRequest, RightsTransition

MAX_DETAILS = 4000
Decide = Callable[[str, str], bool]
"""(category, action) -> allowed: the officer's decision, asked of Casbin and logged."""


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str
    """customer, employee or anonymous (a request submitted by email address)."""
    id: UUID | None = None


def _date(moment: datetime | None) -> str:
    return moment.strftime("%d %B %Y") if moment else "-"


async def _move(
    request: RightsRequest,
    to: Status,
    *,
    actor: Actor,
    reason: str,
    now: datetime,
    conn: BaseDBAsyncClient,
) -> None:
    """Change the status and record the transition (the caller saves the request)."""
    await RightsTransition.create(
        request_id=request.id,
        from_status=request.status,
        to_status=to,
        actor_kind=actor.kind,
        actor_id=str(actor.id or ""),
        reason=reason,
        at=now,
        using_db=conn,
    )
    request.status = to


async def _mail(
    services: Services, request: RightsRequest, mail: Mail, conn: BaseDBAsyncClient
) -> bool:
    """Queue `mail` to the account's address; False when the address has had its share of
    this kind of mail for now (api/security/mail_limits.py) and nothing was queued."""
    customer = await Customer.get(id=request.customer_id, using_db=conn)
    queued = await enqueue(
        mail=mail,
        recipient=customer.email,
        customer_id=customer.id,
        clock=services.clock,
        using_db=conn,
    )
    return queued is not None


async def _send_code(services: Services, request: RightsRequest, conn: BaseDBAsyncClient) -> None:
    """A fresh code (the old one stops working), mailed to the account's address. When the
    address has had its share of codes for now, nothing is mailed and the code it holds
    keeps working: a stranger asking again and again cannot void the owner's code."""
    code = new_code()
    mail = templates.rights_code(
        settings=services.settings,
        kind=request.kind,
        request_id=str(request.id),
        code=code,
        minutes=CODE_MINUTES,
    )
    if not await _mail(services, request, mail, conn):
        return
    request.code_digest = code_digest(secret=services.secret, request_id=request.id, code=code)
    request.code_expires_at = services.clock.now() + timedelta(minutes=CODE_MINUTES)
    request.code_attempts = 0
    await request.save(using_db=conn)


def check_input(*, kind: Kind, details: str, changes: dict[str, Any] | None) -> dict[str, Any]:
    """The request's own problems (VALIDATION), decided before anyone's data is looked at."""
    if len(details) > MAX_DETAILS:
        raise RightsProblem(
            "VALIDATION", f"Use at most {MAX_DETAILS} characters of details.", field="details"
        )
    if kind is Kind.RECTIFICATION:
        return rectification.validate(changes or {})
    if changes:
        raise RightsProblem(
            "VALIDATION", "Only a rectification request proposes changes.", field="changes"
        )
    return {}


class Submitted(NamedTuple):
    request: RightsRequest
    opened: bool
    """False when a request of the same kind was already open: `request` is that one, and
    nothing was written or mailed."""


async def submit(
    *,
    services: Services,
    customer_id: UUID,
    kind: Kind,
    details: str,
    changes: dict[str, Any] | None,
    actor: Actor,
) -> Submitted:
    """A new request, unverified until the code mailed to the account is entered; or, while
    one of the same kind is still open, that one (one request per intent)."""
    clean = check_input(kind=kind, details=details, changes=changes)
    now = services.clock.now()
    async with in_transaction() as conn:
        # Ten identical submissions at once: one request, one code (issue 15); the others
        # wait here, then find it open.
        await lock_customer(conn, customer_id)
        open_one = (
            await RightsRequest.filter(customer_id=customer_id, kind=kind)
            .exclude(status__in=list(REPEATABLE))
            .using_db(conn)
            .first()
        )
        if open_one is not None:
            return Submitted(open_one, opened=False)
        country = (
            await Customer.filter(id=customer_id)
            .using_db(conn)
            .values_list("address_country", flat=True)
        )
        jurisdiction = deadlines.jurisdiction_for(
            str(country[0]) if country else "", services.settings.rights_default_jurisdiction
        )
        rule = deadlines.RULES[jurisdiction]
        clock = [deadlines.event(now, deadlines.STARTED, "submitted")]
        if rule.verification_pauses:
            clock.append(deadlines.event(now, deadlines.PAUSED, "awaiting identity verification"))
        request = RightsRequest(
            customer_id=customer_id,
            kind=kind,
            status=Status.UNVERIFIED,
            channel="account" if actor.kind == "customer" else "email",
            details=details.strip(),
            changes=clean,
            submitted_at=now,
            jurisdiction=jurisdiction,
            clock=clock,
            due_at=deadlines.due(rule, clock),
        )
        await request.save(using_db=conn)
        request.status = ""  # recorded as the first transition: (none) -> unverified
        await _move(request, Status.UNVERIFIED, actor=actor, reason="submitted", now=now, conn=conn)
        await _send_code(services, request, conn)
    return Submitted(request, opened=True)


async def submit_by_email(
    *, services: Services, address: str, kind: Kind, details: str, changes: dict[str, Any] | None
) -> bool:
    """For someone who cannot sign in, run by the intake worker (api/rights/intake.py) after
    the requester was answered: a known address gets a code for a new request; asked again
    while one of that kind is open, a fresh code for it once the code mailed last is older
    than `rights_repeat_window_minutes` (within it, nothing: the code it holds still works),
    an unknown one nothing. True when the address has an account."""
    customer = await Customer.filter(email=address).first()
    if customer is None:
        return False
    try:
        submitted = await submit(
            services=services,
            customer_id=customer.id,
            kind=kind,
            details=details,
            changes=changes,
            actor=Actor("anonymous"),
        )
    except RightsProblem:  # checked when it was accepted; refused now, it opens nothing
        return True
    if not submitted.opened:
        await resend_code_for_open(services=services, customer_id=customer.id, kind=kind)
    return True


async def resend_code_for_open(*, services: Services, customer_id: UUID, kind: Kind) -> None:
    window = timedelta(minutes=services.settings.rights_repeat_window_minutes)
    async with in_transaction() as conn:
        await lock_customer(conn, customer_id)
        request = (
            await RightsRequest.filter(customer_id=customer_id, kind=kind, status=Status.UNVERIFIED)
            .using_db(conn)
            .first()
        )
        if request is None:
            return
        mailed = request.code_expires_at and request.code_expires_at - timedelta(
            minutes=CODE_MINUTES
        )
        if mailed and services.clock.now() < mailed + window:
            return  # a repeat: the code mailed last still stands for it
        await _send_code(services, request, conn)


async def _own(
    request_id: UUID, customer_id: UUID | None, conn: BaseDBAsyncClient
) -> RightsRequest:
    """The request, when it exists and (for a signed-in customer) is theirs; anything else
    is NOT_FOUND. Ownership is part of the one query, so another customer's id and an
    unknown one cost the same statement and find the same nothing."""
    query = RightsRequest.filter(id=request_id)
    if customer_id is not None:
        query = query.filter(customer_id=customer_id)
    # Locked until the transaction ends (PostgreSQL): two transitions of one request at
    # once apply one after the other, the second seeing the first's status.
    request = await query.using_db(conn).select_for_update().first()
    if request is None:
        raise RightsProblem("NOT_FOUND", "No such request.")
    return request


async def verify(
    *, services: Services, request_id: UUID, code: str, customer_id: UUID | None
) -> RightsRequest:
    """Receipt: the code proves the requester holds the account's mailbox. A wrong code
    costs one of CODE_ATTEMPTS attempts (INVALID_CODE); then CODE_LOCKED until a new code.
    Unknown or foreign ids answer INVALID_CODE too."""
    now = services.clock.now()
    async with in_transaction() as conn:
        try:
            request = await _own(request_id, customer_id, conn)
        except RightsProblem:
            raise RightsProblem("INVALID_CODE", "The code is wrong.") from None
        if request.status != Status.UNVERIFIED:
            raise RightsProblem("INVALID_TRANSITION", "This request is already verified.")
        if request.code_attempts >= CODE_ATTEMPTS:
            raise RightsProblem("CODE_LOCKED", "Too many wrong codes: ask for a new one.")
        if request.code_expires_at is None or request.code_expires_at <= now:
            raise RightsProblem("CODE_EXPIRED", "The code has expired: ask for a new one.")
        if not code_matches(
            secret=services.secret, request_id=request.id, code=code, digest=request.code_digest
        ):
            # Counted (and committed) before the refusal is raised, outside this block.
            counted = (
                await RightsRequest.filter(id=request.id, code_attempts=request.code_attempts)
                .using_db(conn)
                .update(code_attempts=request.code_attempts + 1)
            )
            wrong = CODE_ATTEMPTS - request.code_attempts - counted
        else:
            wrong = None
            await _receive(services, request, now, conn)
    if wrong is not None:
        raise RightsProblem(
            "INVALID_CODE", f"The code is wrong ({wrong} attempt(s) left).", attempts_left=wrong
        )
    return request


async def _receive(
    services: Services, request: RightsRequest, now: datetime, conn: BaseDBAsyncClient
) -> None:
    """The identity is proven: the request is received, and its clock runs again if it
    stood meanwhile."""
    request.code_digest, request.code_expires_at = None, None
    request.received_at = now
    if not request.clock:  # submitted before clocks were kept: it starts here, as it did then
        request.clock = [deadlines.event(now, deadlines.STARTED, "identity verified")]
    elif deadlines.paused(request.clock):
        resumed = deadlines.event(now, deadlines.RESUMED, "identity verified")
        request.clock = [*request.clock, resumed]
    request.due_at = deadlines.due(_rule(request), request.clock)
    actor = Actor("customer", UUID(str(request.customer_id)))
    await _move(
        request, Status.PENDING, actor=actor, reason="identity verified", now=now, conn=conn
    )
    await request.save(using_db=conn)
    mail = templates.rights_received(
        settings=services.settings,
        kind=request.kind,
        request_id=str(request.id),
        due=_date(request.due_at),
    )
    await _mail(services, request, mail, conn)


async def resend_code(*, services: Services, request_id: UUID, customer_id: UUID) -> None:
    async with in_transaction() as conn:
        request = await _own(request_id, customer_id, conn)
        if request.status != Status.UNVERIFIED:
            raise RightsProblem("INVALID_TRANSITION", "This request is already verified.")
        await _send_code(services, request, conn)


async def cancel(*, services: Services, request_id: UUID, customer_id: UUID) -> RightsRequest:
    """The customer withdraws their request before work on it starts."""
    now = services.clock.now()
    async with in_transaction() as conn:
        request = await _own(request_id, customer_id, conn)
        if request.status in CLOSED or request.status in (Status.IN_PROGRESS, Status.NOTIFYING):
            raise RightsProblem(
                "INVALID_TRANSITION", f"A request {request.status} cannot be cancelled."
            )
        actor = Actor("customer", customer_id)
        await _move(
            request,
            Status.CANCELLED,
            actor=actor,
            reason="cancelled by the customer",
            now=now,
            conn=conn,
        )
        await request.save(using_db=conn)
    return request


async def _in_state(
    request_id: UUID,
    conn: BaseDBAsyncClient,
    *,
    ready: Callable[[RightsRequest], bool],
    verb: str,
) -> RightsRequest:
    """The request, when `ready` says it may be `verb`ed now; else INVALID_TRANSITION."""
    request = await _own(request_id, None, conn)
    if not ready(request):
        raise RightsProblem("INVALID_TRANSITION", f"A request {request.status} cannot be {verb}.")
    return request


def _reviewable(request: RightsRequest) -> bool:
    return request.status == Status.PENDING or (
        request.status == Status.EXTENDED and request.decided_at is None
    )


def _approved(request: RightsRequest) -> bool:
    return request.status == Status.APPROVED or (
        request.status == Status.EXTENDED and request.decided_at is not None
    )


async def review(
    *, services: Services, request_id: UUID, officer_id: UUID, approve: bool, reason: str
) -> RightsRequest:
    """The privacy officer approves, or refuses with a reason the customer is told."""
    if not approve and not reason.strip():
        raise RightsProblem("VALIDATION", "A refusal needs a reason.")
    now = services.clock.now()
    async with in_transaction() as conn:
        request = await _in_state(request_id, conn, ready=_reviewable, verb="reviewed")
        to = Status.APPROVED if approve else Status.REFUSED
        actor = Actor("employee", officer_id)
        await _move(request, to, actor=actor, reason=reason.strip(), now=now, conn=conn)
        request.decided_at, request.decided_by, request.decision_reason = (
            now,
            officer_id,
            reason.strip(),
        )
        if not approve:
            request.completed_at = now
        await request.save(using_db=conn)
        mail = templates.rights_decided(
            settings=services.settings,
            request_id=str(request.id),
            approved=approve,
            reason=reason.strip(),
        )
        await _mail(services, request, mail, conn)
    return request


def _rule(request: RightsRequest) -> deadlines.DeadlineRule:
    return deadlines.RULES.get(request.jurisdiction, deadlines.GDPR)


async def extend(
    *, services: Services, request_id: UUID, officer_id: UUID, reason: str, months: int | None
) -> RightsRequest:
    """Once, before the due date, by what the request's law allows (GDPR: 1 or 2 months,
    `months`; CCPA: 45 days, no `months`), with a reason mailed to the customer."""
    if not reason.strip():
        raise RightsProblem("VALIDATION", "An extension needs a reason.")
    now = services.clock.now()
    async with in_transaction() as conn:
        request = await _own(request_id, None, conn)
        rule = _rule(request)
        try:
            period = rule.extension(months)
        except ValueError as exc:
            raise RightsProblem("VALIDATION", f"{str(exc).capitalize()}.", field="months") from None
        if request.status not in RUNNING - {Status.NOTIFYING} or request.due_at is None:
            raise RightsProblem(
                "INVALID_TRANSITION", f"A request {request.status} cannot be extended."
            )
        if request.extended_at is not None:
            raise RightsProblem("ALREADY_EXTENDED", "A request is extended once at most.")
        if now >= request.due_at:
            raise RightsProblem("PAST_DUE", "The due date has passed: answer instead.")
        actor = Actor("employee", officer_id)
        await _move(
            request, Status.EXTENDED, actor=actor, reason=reason.strip(), now=now, conn=conn
        )
        extension = deadlines.event(now, deadlines.EXTENDED, reason.strip(), period)
        request.clock = [*request.clock, extension]
        if not request.clock[:-1]:  # a request from before the clock: its due date moves
            request.due_at = period.after(request.due_at)
        else:
            request.due_at = deadlines.due(rule, request.clock)
        request.extended_at, request.extension_reason = now, reason.strip()
        await request.save(using_db=conn)
        mail = templates.rights_extended(
            settings=services.settings,
            request_id=str(request.id),
            due=_date(request.due_at),
            reason=reason.strip(),
        )
        await _mail(services, request, mail, conn)
    return request


async def fulfil(
    *, services: Services, request_id: UUID, officer_id: UUID, decide: Decide
) -> RightsRequest:
    """Carry out an approved request, in one transaction: in_progress, the work, completed
    (or, on any failure, nothing at all). The work reads and writes through `decide`."""
    now = services.clock.now()
    async with in_transaction() as conn:
        request = await _in_state(request_id, conn, ready=_approved, verb="fulfilled")
        actor = Actor("employee", officer_id)
        await _move(request, Status.IN_PROGRESS, actor=actor, reason="", now=now, conn=conn)
        await request.save(using_db=conn)
        request.outcome, waiting = await perform.carry_out(
            services=services, request=request, decide=decide, now=now, conn=conn
        )
        request.completed_at = now
        if waiting:
            reason = f"{waiting} recipient(s) notified, awaiting acknowledgement"
            await _move(request, Status.NOTIFYING, actor=actor, reason=reason, now=now, conn=conn)
        else:
            await _move(request, Status.COMPLETED, actor=actor, reason="", now=now, conn=conn)
        await request.save(using_db=conn)
    return request


async def subject_of(request_id: UUID) -> UUID | None:
    """Whose data a request is about (None for an unknown id)."""
    found = await RightsRequest.filter(id=request_id).values_list("customer_id", flat=True)
    return UUID(str(found[0])) if found else None


async def overdue(*, now: datetime, limit: int = 1000) -> list[RightsRequest]:
    """Received, unanswered requests past their due date, the most overdue first."""
    return (
        await RightsRequest.filter(status__in=list(RUNNING), due_at__lt=now)
        .order_by("due_at")
        .limit(limit)
    )
