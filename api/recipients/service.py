"""Telling every recipient (GDPR Article 19). The recipients of a customer's data are read
from the disclosure ledger, never from a hand-kept list: one notice per recipient, naming
the categories it received that the change concerns. A processor with a notice endpoint
gets a signed webhook, one without a mail to its contact with a single-use link; both go
through the outbox in the caller's transaction, so the notice exists if and only if the
change it announces committed. A recipient that is not a processor (an authority legal
recorded a disclosure to) is listed as not required, with the reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

from tortoise.backends.base.client import BaseDBAsyncClient

from api.mail.sender import NOTICE_KIND
from api.recipients import links, messages
from api.recipients.vocabulary import Channel, NoticeStatus, Trigger
from api.services import Services
from models import Disclosure, OutboxMessage, Processor, RecipientNotice


@dataclass
class _Recipient:
    name: str
    processor_id: UUID | None
    categories: set[str] = field(default_factory=set)
    bases: set[str] = field(default_factory=set)
    hidden_until: datetime | None = None
    shown: bool = False
    """At least one of its disclosures carries no non-disclosure order."""


async def recipients_of(
    customer_id: UUID,
    *,
    conn: BaseDBAsyncClient,
    purpose: str = "",
    categories: Iterable[str] | None = None,
) -> list[_Recipient]:
    """Who received the customer's data (for `purpose` only, when given), and which of
    `categories` (all, when None), grouped by processor or by recipient name."""
    query = Disclosure.filter(customer_id=customer_id)
    if purpose:
        query = query.filter(purpose=purpose)
    rows = (
        await query.using_db(conn)
        .order_by("id")
        .values("recipient", "processor_id", "categories", "legal_basis", "nondisclosure_until")
    )
    wanted = set(categories) if categories is not None else None
    found: dict[str, _Recipient] = {}
    for row in rows:
        concerned = (
            set(row["categories"]) & wanted if wanted is not None else set(row["categories"])
        )
        if not concerned:
            continue
        processor_id = UUID(str(row["processor_id"])) if row["processor_id"] else None
        key = str(processor_id) if processor_id else f"name:{row['recipient']}"
        recipient = found.setdefault(key, _Recipient(str(row["recipient"]), processor_id))
        recipient.categories |= concerned
        recipient.bases.add(str(row["legal_basis"]))
        until = row["nondisclosure_until"]
        if until is None:
            recipient.shown = True
        elif recipient.hidden_until is None or until > recipient.hidden_until:
            recipient.hidden_until = until
    return list(found.values())


async def notify(
    *,
    services: Services,
    customer_id: UUID,
    trigger: Trigger,
    conn: BaseDBAsyncClient,
    request_id: UUID | None = None,
    purpose: str = "",
    categories: Iterable[str] | None = None,
    respond_by: datetime | None = None,
) -> list[RecipientNotice]:
    """A notice to every recipient of the concerned categories, queued in `conn`."""
    now = services.clock.now()
    found = await recipients_of(customer_id, conn=conn, purpose=purpose, categories=categories)
    ids = [r.processor_id for r in found if r.processor_id]
    known = {p.id: p for p in await Processor.filter(id__in=ids).using_db(conn)} if ids else {}
    notices = []
    for recipient in found:
        processor = known.get(recipient.processor_id) if recipient.processor_id else None
        notice = RecipientNotice(
            id=uuid4(),
            customer_id=customer_id,
            request_id=request_id,
            trigger=trigger,
            purpose=purpose,
            processor_id=recipient.processor_id,
            recipient=recipient.name,
            categories=sorted(recipient.categories),
            hidden_until=None if recipient.shown else recipient.hidden_until,
            created_at=now,
            channel=Channel.NONE,
            status=NoticeStatus.NOT_REQUIRED,
        )
        if processor is None:
            notice.reason = (
                "a disclosure legal recorded ("
                + ", ".join(sorted(recipient.bases))
                + "), not a processor: legal informs such a recipient where the law requires"
            )
            await notice.save(using_db=conn)
        else:
            notice.status = NoticeStatus.PENDING
            await notice.save(using_db=conn)
            await send(
                services=services,
                notice=notice,
                processor=processor,
                respond_by=respond_by,
                conn=conn,
            )
        notices.append(notice)
    return notices


async def send(
    *,
    services: Services,
    notice: RecipientNotice,
    processor: Processor,
    respond_by: datetime | None,
    conn: BaseDBAsyncClient,
    reminder: bool = False,
) -> None:
    """Queue the notice once more (its first sending, or a reminder): to the processor's
    endpoint when it has one now, else to its contact."""
    now = services.clock.now()
    settings = services.settings
    if processor.notice_url and processor.notice_secret:
        channel = Channel.WEBHOOK
        subject = f"notice {notice.id}"
        text = messages.body(notice, settings=settings, respond_by=respond_by)
        address = processor.name
    else:
        channel = Channel.MAIL
        token = links.ack_token(services.secret, notice.id)
        subject, text = messages.mail_text(
            notice, settings=settings, respond_by=respond_by, link_token=token, reminder=reminder
        )
        address = processor.contact
    row = OutboxMessage(
        kind=NOTICE_KIND,
        channel=channel,
        processor_id=processor.id if channel is Channel.WEBHOOK else None,
        recipient=address[:320],
        subject=subject,
        body_text=text,
        next_attempt_at=now,
        created_at=now,
    )
    await row.save(using_db=conn)
    notice.channel = channel
    notice.outbox_id = row.id
    notice.sends += 1
    notice.last_sent_at = now
    await notice.save(
        using_db=conn, update_fields=["channel", "outbox_id", "sends", "last_sent_at"]
    )


def shown_to_customer(notice: RecipientNotice, now: datetime) -> bool:
    """The customer is told of a recipient unless a non-disclosure order still covers it
    (as the ledger's own rows): their request view, mail, export and certificate."""
    return notice.hidden_until is None or notice.hidden_until <= now


async def notify_withdrawal(
    *, services: Services, customer_id: UUID, purpose: str, conn: BaseDBAsyncClient
) -> list[RecipientNotice]:
    """A consent withdrawn (by the customer, an unsubscribe link or a GPC signal): the
    processors that received data for `purpose` are told to stop."""
    return await notify(
        services=services,
        customer_id=customer_id,
        trigger=Trigger.CONSENT_WITHDRAWN,
        purpose=purpose,
        conn=conn,
    )


async def notices_of(request_ids: list[UUID]) -> list[list[RecipientNotice]]:
    """Each request's notices, by recipient name (a batch loader)."""
    found: dict[str, list[RecipientNotice]] = {str(i): [] for i in request_ids}
    rows = await RecipientNotice.filter(request_id__in=request_ids).order_by("recipient", "id")
    for row in rows:
        found[str(row.request_id)].append(row)
    return [found[str(i)] for i in request_ids]
