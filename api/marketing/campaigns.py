"""Marketing campaigns (policy sections 2 and 5.2; docs/ARCHITECTURE.md: mail).

The marketing role writes a campaign and sends it. Sending queues one message per customer
for whom `may_process(marketing.email)` holds at that moment and whose address is
verified, in batches: each batch is one transaction that reads the audience, moves the
campaign's cursor with a compare-and-set, queues the messages in the outbox and logs the
purpose-bound reads of the addresses. A crash between batches resumes after the last
committed one; two processes never queue a customer twice. The addresses are read here,
never shown to marketing staff. Messages are spread over time (`campaign_per_second`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from uuid import UUID

from tortoise.expressions import F
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from api.customers import validation as v
from api.errors import FieldProblem, InputInvalid
from api.mail.outbox import state_of
from api.marketing.audience import Recipient, email_audience
from api.marketing.unsubscribe_tokens import unsubscribe_token, unsubscribe_url
from api.services import Services
from authz.adapter import employee_subject
from authz.audit import AuditTrail
from authz.enforcer import Decision
from authz.registry import PURPOSES, PurposeKey, Role
from models import Campaign, OutboxMessage

log = logging.getLogger("custos.marketing")

EMAIL_PURPOSES = frozenset({PurposeKey.MARKETING_EMAIL})
"""The purposes a campaign may be sent for: marketing by email."""
KIND = "marketing"
_CONDITIONS = (f"consent:{PurposeKey.MARKETING_EMAIL}",)
"""The condition every recipient meets: the sender's reads are decided, and logged, under it."""


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    subject: str
    body_text: str
    body_html: str
    purpose: str


def _check(draft: CampaignDraft) -> None:
    p = v.Problems()
    if not draft.subject.strip():
        p.add("subject", "This field is required.")
    elif len(draft.subject) > 200 or "\n" in draft.subject or "\r" in draft.subject:
        p.add("subject", "One line of at most 200 characters.")
    if not draft.body_text.strip():
        p.add("bodyText", "A campaign needs a text body.")
    elif len(draft.body_text) > 100_000:
        p.add("bodyText", "Use at most 100,000 characters.")
    if len(draft.body_html) > 200_000:
        p.add("bodyHtml", "Use at most 200,000 characters.")
    if draft.purpose not in PURPOSES:
        p.add("purpose", f"Unknown purpose; known: {', '.join(sorted(PURPOSES))}.")
    elif draft.purpose not in EMAIL_PURPOSES:
        p.add("purpose", "A campaign is sent for marketing.email.")
    p.raise_if_any()


async def create_campaign(
    *, services: Services, draft: CampaignDraft, created_by: UUID
) -> Campaign:
    _check(draft)
    return await Campaign.create(
        subject=draft.subject.strip(),
        body_text=draft.body_text,
        body_html=draft.body_html,
        created_by=created_by,
        created_at=services.clock.now(),
    )


def _problem(field: str, code: str, message: str) -> InputInvalid:
    return InputInvalid([FieldProblem(field, code, message)])


async def start_sending(*, services: Services, campaign_id: UUID, sent_by: UUID) -> Campaign:
    """A draft starts sending (once): its batches are queued by the campaign loop."""
    now = services.clock.now()
    moved = await Campaign.filter(id=campaign_id, status="draft").update(
        status="sending", sent_by=sent_by, send_started_at=now
    )
    campaign = await Campaign.get_or_none(id=campaign_id)
    if campaign is None:
        raise _problem("id", "NOT_FOUND", "No such campaign.")
    if not moved:
        raise _problem("id", "INVALID_TRANSITION", f"This campaign is already {campaign.status}.")
    return campaign


def _message(
    services: Services, campaign: Campaign, recipient: Recipient, slot: datetime
) -> OutboxMessage:
    """One customer's copy: their own unsubscribe link in the headers and the body."""
    settings = services.settings
    token = unsubscribe_token(
        secret=services.secret,
        customer_id=recipient.customer_id,
        purpose=PurposeKey.MARKETING_EMAIL,
        issued_at=slot,
    )
    url = unsubscribe_url(public_url=settings.public_url, token=token)
    targets = [f"<{url}>"]
    if settings.unsubscribe_mailto:
        targets.append(f"<mailto:{settings.unsubscribe_mailto}?subject=unsubscribe>")
    footer = (
        "\n\n--\nYou receive this because you agreed to marketing email from us.\n"
        f"Unsubscribe with one click: {url}\n"
    )
    html = ""
    if campaign.body_html:
        link = escape(url, quote=True)
        html = (
            f"{campaign.body_html}\n<hr><p>You receive this because you agreed to marketing "
            f'email from us. <a href="{link}">Unsubscribe</a></p>\n'
        )
    return OutboxMessage(
        kind=KIND,
        recipient=recipient.email,
        customer_id=recipient.customer_id,
        campaign_id=campaign.id,
        subject=campaign.subject,
        body_text=campaign.body_text + footer,
        body_html=html,
        headers={
            "List-Unsubscribe": ", ".join(targets),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        next_attempt_at=slot,
        created_at=services.clock.now(),
    )


def _log_reads(
    *,
    trail: AuditTrail,
    campaign: Campaign,
    recipients: list[Recipient],
    decision: Decision,
    policy_version: int,
    now: datetime,
) -> None:
    """The addresses read for this batch: one decision for the sender, every customer."""
    for recipient in recipients:
        trail.access(
            at=now,
            actor_kind="employee",
            actor_id=str(campaign.sent_by or ""),
            roles=Role.MARKETING,
            category="contact.email",
            action="read",
            purpose=PurposeKey.MARKETING_EMAIL,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            reason=f"campaign {campaign.id}",
            conditions=_CONDITIONS,
            policy_version=policy_version,
            subject_id=recipient.customer_id,
        )


def _sender_may_read(services: Services, campaign: Campaign) -> Decision:
    """Casbin's answer for the employee who sent the campaign, as they are now (a revoked
    role stops the rest of the campaign)."""
    return services.authorizer.decide(
        subject=employee_subject(str(campaign.sent_by or "")),
        category="contact.email",
        action="read",
        purpose=PurposeKey.MARKETING_EMAIL,
        conditions=_CONDITIONS,
    )


async def _queue_batch(*, services: Services, campaign_id: UUID) -> None:
    """Queue the next batch of one campaign (reads outside, writes in one transaction)."""
    settings = services.settings
    campaign = await Campaign.get(id=campaign_id)
    if campaign.status != "sending":
        return
    old = campaign.cursor
    batch = await email_audience(services=services, after=old, limit=settings.campaign_batch)
    decision = _sender_may_read(services, campaign)
    policy_version = services.authorizer.version  # no await since deciding: the one decided under
    send = batch.recipients if decision.allowed else []
    start = campaign.send_started_at or services.clock.now()
    gap = timedelta(seconds=1.0 / settings.campaign_per_second)
    messages = [
        _message(services, campaign, r, start + (campaign.recipients + i) * gap)
        for i, r in enumerate(send)
    ]
    now = services.clock.now()
    trail = AuditTrail(campaign.id.hex)  # the request id column holds 32 characters
    _log_reads(
        trail=trail,
        campaign=campaign,
        recipients=batch.recipients,
        decision=decision,
        policy_version=policy_version,
        now=now,
    )
    done = batch.after is None
    async with in_transaction() as conn:
        guard = Campaign.filter(id=campaign.id, status="sending")
        guard = guard.filter(cursor__isnull=True) if old is None else guard.filter(cursor=old)
        moved = await guard.using_db(conn).update(
            cursor=batch.after if batch.after is not None else old,
            recipients=F("recipients") + len(send),
            skipped=F("skipped") + (batch.considered - len(send)),
            status="sent" if done else "sending",
            queued_at=now if done else None,
        )
        if moved != 1:
            return  # another process queued this batch; the next round goes on from its cursor
        await OutboxMessage.bulk_create(messages, batch_size=500, using_db=conn)
        await trail.flush()
    if not decision.allowed:
        log.warning("campaign %s: its sender may not read addresses; none queued", campaign.id)


async def queue_campaigns(*, services: Services, limit_batches: int | None = None) -> int:
    """Queue batches of every campaign being sent, until none is left (or `limit_batches`
    ran); returns how many batches ran."""
    batches = 0
    while limit_batches is None or batches < limit_batches:
        sending = await Campaign.filter(status="sending").order_by("send_started_at").first()
        if sending is None:
            break
        await _queue_batch(services=services, campaign_id=sending.id)
        batches += 1
    return batches


async def run_campaign_loop(*, services: Services, poll_seconds: float) -> None:
    """Background queueing, every `poll_seconds` (every process may run it)."""
    while True:
        try:
            await queue_campaigns(services=services)
        except Exception as exc:  # keep the loop alive; the next round resumes
            log.error("campaign round failed: %s", type(exc).__name__)
        await asyncio.sleep(poll_seconds)


async def delivery_counts(campaign_id: UUID) -> dict[str, int]:
    """A campaign's messages by delivery state: queued, delivered, failed (still retried),
    dead (retry budget spent, purged ones included)."""
    return (await delivery_counts_of([campaign_id]))[0]


async def delivery_counts_of(campaign_ids: Sequence[UUID]) -> list[dict[str, int]]:
    """Each campaign's `delivery_counts`, in one grouped query whatever the number of
    campaigns (a batch loader: results in the order of the ids)."""
    counts = {i: dict.fromkeys(("queued", "delivered", "failed", "dead"), 0) for i in campaign_ids}
    rows = await (
        OutboxMessage.filter(campaign_id__in=list(campaign_ids))
        .annotate(n=Count("id"))
        .group_by("campaign_id", "status", "last_error")
        .values("campaign_id", "status", "last_error", "n")
    )
    for row in rows:
        state = state_of(row["status"], row["last_error"])
        key = "dead" if state == "purged" else state
        of_campaign = counts[UUID(str(row["campaign_id"]))]
        if key in of_campaign:
            of_campaign[key] += row["n"]
    return [counts[i] for i in campaign_ids]
