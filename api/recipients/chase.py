"""Chasing recipients that have not acknowledged (docs/RECIPIENTS.md). Every round, which
any number of processes may run at once:

- a notice delivered and unanswered for `recipient_chase_hours` since its last sending is
  sent again (a reminder), up to `recipient_chases` sendings in all;
- a notice still open is escalated once to every active privacy officer (a mail naming the
  request and the recipient, never the customer's data) when its delivery failed, when its
  sendings are spent and the last is `recipient_chase_hours` old, or when its request's due
  date is `recipient_escalate_days` away or past.

Each step claims its notice with a conditional UPDATE, so two processes never both remind
or both escalate."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.clock import iso
from api.mail.outbox import Mail, enqueue_many
from api.recipients.service import send
from api.recipients.vocabulary import NoticeStatus
from api.services import Services
from authz.registry import Role
from models import Employee, Processor, RecipientNotice, RightsRequest

log = logging.getLogger("custos.recipients")
OPEN = (NoticeStatus.PENDING, NoticeStatus.NOTIFIED, NoticeStatus.FAILED)
ESCALATION_KIND = "recipient_escalation"


@dataclass(frozen=True, slots=True)
class Round:
    reminded: int
    escalated: int


async def _due_dates(notices: list[RecipientNotice]) -> dict[str, datetime | None]:
    ids = {n.request_id for n in notices if n.request_id}
    if not ids:
        return {}
    rows = await RightsRequest.filter(id__in=list(ids)).values_list("id", "due_at")
    return {str(i): due for i, due in rows}


async def remind(services: Services, now: datetime) -> int:
    settings = services.settings
    stale = now - timedelta(hours=settings.recipient_chase_hours)
    due = await RecipientNotice.filter(
        status=NoticeStatus.NOTIFIED, last_sent_at__lte=stale, sends__lt=settings.recipient_chases
    ).limit(200)
    dates = await _due_dates(due)
    reminded = 0
    for notice in due:
        processor = await Processor.get_or_none(id=notice.processor_id)
        if processor is None:
            continue
        async with in_transaction() as conn:
            claimed = (
                await RecipientNotice.filter(
                    id=notice.id, status=NoticeStatus.NOTIFIED, sends=notice.sends
                )
                .using_db(conn)
                .update(last_sent_at=now)
            )
            if not claimed:
                continue  # answered, or reminded by another process, meanwhile
            respond_by = dates.get(str(notice.request_id))
            await send(
                services=services,
                notice=notice,
                processor=processor,
                respond_by=respond_by,
                conn=conn,
                reminder=True,
            )
        reminded += 1
    return reminded


def _late(now: datetime, services: Services) -> Q:
    settings = services.settings
    stale = now - timedelta(hours=settings.recipient_chase_hours)
    spent = Q(sends__gte=settings.recipient_chases, last_sent_at__lte=stale)
    return Q(status=NoticeStatus.FAILED) | (Q(status=NoticeStatus.NOTIFIED) & spent)


async def escalate(services: Services, now: datetime) -> int:
    settings = services.settings
    near = now + timedelta(days=settings.recipient_escalate_days)
    closing = await RightsRequest.filter(status="notifying", due_at__lte=near).values_list(
        "id", flat=True
    )
    candidates = await RecipientNotice.filter(
        Q(status__in=list(OPEN), escalated_at=None)
        & (_late(now, services) | Q(request_id__in=list(closing)))
    ).limit(200)
    if not candidates:
        return 0
    dates = await _due_dates(candidates)
    officers = await Employee.filter(active=True, roles__role=Role.PRIVACY_OFFICER).values_list(
        "email", flat=True
    )
    escalated = 0
    for notice in candidates:
        async with in_transaction() as conn:
            claimed = (
                await RecipientNotice.filter(id=notice.id, escalated_at=None)
                .using_db(conn)
                .update(escalated_at=now)
            )
            if not claimed:
                continue
            mail = _escalation(notice, dates.get(str(notice.request_id)))
            await enqueue_many(
                mail=mail,
                recipients=[(str(a), None) for a in dict.fromkeys(officers)],
                clock=services.clock,
                using_db=conn,
            )
        log.warning("recipient notice %s escalated (%s)", notice.id, notice.status)
        escalated += 1
    return escalated


def _escalation(notice: RecipientNotice, due: datetime | None) -> Mail:
    about = f"request {notice.request_id}" if notice.request_id else f"withdrawn {notice.purpose}"
    lines = [
        f"{notice.recipient} has not acknowledged notice {notice.id} ({notice.trigger}, {about}).",
        f"Status: {notice.status}; sent {notice.sends} time(s), last {iso(notice.last_sent_at)}.",
    ]
    if due is not None:
        lines.append(f"The request is due {iso(due)}.")
    lines += [
        "",
        "Contact the recipient, or record why it cannot answer (excuseRecipientNotice); a "
        "failed delivery can be sent again with `custos mail requeue`.",
    ]
    return Mail(
        kind=ESCALATION_KIND,
        subject=f"Unacknowledged notice to {notice.recipient}"[:200],
        body="\n".join(lines) + "\n",
    )


async def chase(services: Services) -> Round:
    now = services.clock.now()
    return Round(reminded=await remind(services, now), escalated=await escalate(services, now))


async def run_chase_loop(*, services: Services, poll_seconds: float) -> None:
    """Background chasing, every `poll_seconds` (every process may run it)."""
    while True:
        try:
            await chase(services)
        except Exception as exc:  # keep the loop alive
            log.error("recipient chase round failed: %s", type(exc).__name__)
        await asyncio.sleep(poll_seconds)
