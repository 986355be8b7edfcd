"""The work of fulfilling each kind of request, inside the fulfilment's transaction. Every
category it reads, writes or erases is decided for the officer (purpose `legal`) and
logged. An erasure or rectification is then announced to every recipient of the data
concerned (api/recipients/), and the customer's answer says who they were."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.mail import templates
from api.mail.outbox import enqueue
from api.recipients.service import notify, shown_to_customer
from api.recipients.vocabulary import SETTLED, Trigger
from api.rights import rectification
from api.rights.certificate import link_token
from api.rights.erasure import erase_customer
from api.rights.export import build_export, issue_download
from api.rights.rules import Kind, RightsProblem
from api.services import Services
from authz.registry import Category
from models import Customer, RecipientNotice, RightsRequest

ERASABLE = tuple(c for c in Category if c is not Category.ACCOUNT_CREDENTIALS)
RECTIFIED = {"phone": Category.CONTACT_PHONE, "address": Category.CONTACT_ADDRESS}
"""The category each field a rectification corrects belongs to."""


async def carry_out(
    *,
    services: Services,
    request: RightsRequest,
    decide: Callable[[str, str], bool],
    now: datetime,
    conn: BaseDBAsyncClient,
) -> tuple[dict[str, Any], int]:
    """Do the request's work; returns its outcome (stored on the request) and how many
    recipients were sent a notice to acknowledge."""
    customer_id = UUID(str(request.customer_id))
    kind = Kind(request.kind)
    if kind is Kind.ACCESS:
        document = await build_export(
            customer_id=customer_id, include=lambda c: decide(c, "export"), now=now
        )
        await issue_download(
            services=services,
            request_id=request.id,
            customer_id=customer_id,
            document=document,
            using_db=conn,
        )
        return {"omitted": document["omitted"]}, 0
    if kind is Kind.RECTIFICATION:
        request.before, request.after = await rectification.apply(
            customer_id=customer_id,
            changes=request.changes,
            allowed=lambda c: decide(c, "write"),
            conn=conn,
        )
        told = await notify(
            services=services,
            customer_id=customer_id,
            trigger=Trigger.RECTIFICATION,
            request_id=request.id,
            categories=[RECTIFIED[name] for name in request.after if name in RECTIFIED],
            respond_by=request.due_at,
            conn=conn,
        )
        summary = "Your data is corrected." + told_summary(told, now=now)
        await _completed(services, request, customer_id, summary, conn)
        return {"applied": sorted(request.after)}, _waiting(told)
    refused = [c for c in ERASABLE if not decide(c, "erase")]
    if refused:
        raise RightsProblem("FORBIDDEN", f"Not allowed to erase {', '.join(refused)}.")
    address = (await Customer.get(id=customer_id, using_db=conn)).email
    outcome = await erase_customer(
        services=services, customer_id=customer_id, request_id=request.id, now=now, using_db=conn
    )
    told = await notify(
        services=services,
        customer_id=customer_id,
        trigger=Trigger.ERASURE,
        request_id=request.id,
        respond_by=request.due_at,
        conn=conn,
    )
    if outcome.get(Category.RIGHTS_REQUESTS, {}).get("action") != "kept":
        # erase_customer blanked this request's text too; the copy in hand must not put it back
        request.details, request.changes, request.before, request.after = "", {}, {}, {}
    # The answer must reach the person whose account is gone: the message is not linked
    # to the customer, and the sender forgets the address once it is delivered.
    await enqueue(
        mail=templates.rights_completed(
            settings=services.settings,
            request_id=str(request.id),
            summary=erasure_summary(outcome)
            + told_summary(told, now=now)
            + certificate_note(services, request.id),
            erased=True,
        ),
        recipient=address,
        customer_id=None,
        clock=services.clock,
        using_db=conn,
    )
    return {"categories": outcome}, _waiting(told)


def certificate_note(services: Services, request_id: Any) -> str:
    """Where the certificate of the erasure is (it is ready once every recipient told has
    confirmed); the link works for good."""
    token = link_token(services.secret, request_id)
    url = services.settings.public_url.rstrip("/") + f"/certificates/{token}"
    return (
        "\n\nYour certificate of erasure, signed by our decision log, is at this address "
        f"once every recipient has confirmed (keep it: it works for good):\n{url}\n"
    )


def _waiting(notices: list[RecipientNotice]) -> int:
    return sum(1 for n in notices if n.status not in SETTLED)


def told_summary(notices: list[RecipientNotice], *, now: datetime) -> str:
    """Who received the data and was told (Article 19), as the customer's mail says it;
    a recipient under a running non-disclosure order is left out."""
    shown = [n for n in notices if shown_to_customer(n, now)]
    if not shown:
        return ""
    lines = [
        f"- {n.recipient} ({', '.join(n.categories)}): "
        + ("asked to act and confirm" if n.status not in SETTLED else f"not told: {n.reason}")
        for n in shown
    ]
    return (
        "\n\nWe shared some of this data with others; we told each of them:\n"
        + "\n".join(lines)
        + "\nYour request shows when each confirms.\n"
    )


async def _completed(
    services: Services, request: RightsRequest, customer_id: UUID, summary: str, conn: Any
) -> None:
    customer = await Customer.get(id=customer_id, using_db=conn)
    await enqueue(
        mail=templates.rights_completed(
            settings=services.settings, request_id=str(request.id), summary=summary
        ),
        recipient=customer.email,
        customer_id=customer_id,
        clock=services.clock,
        using_db=conn,
    )


def erasure_summary(outcome: dict[str, dict[str, Any]]) -> str:
    """Per category what was erased, and what was kept and why."""
    lines = []
    for category, result in sorted(outcome.items()):
        action = result.get("action", "erased")
        why = result.get("why") or ""
        lines.append(f"- {category}: {action}" + (f" ({why})" if action == "kept" and why else ""))
    return "What we did with each kind of data:\n" + "\n".join(lines)
