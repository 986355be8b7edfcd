"""Article 19 end to end: a fulfilled erasure reaches every recipient the disclosure ledger
names. Real parts play the processors: two HTTP endpoints (one acknowledges, one never
answers and is chased, then escalated) and an SMTP relay for one with only a mail contact.
The request completes once each has acknowledged or an officer recorded why not."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from api.clock import FakeClock
from api.mail.sender import SmtpBackend, deliver_pending
from api.recipients import chase
from api.services import Services
from api.sharing import ledger
from api.sharing.processors import ProcessorDraft, create_processor
from models import (
    AuditEvent,
    Customer,
    Processor,
    RecipientNotice,
    RightsRequest,
    RightsTransition,
)
from tests.conftest import GQL
from tests.notice_receivers import Mailbox, Receiver, serving
from tests.smtp_helpers import smtp_to
from tests.test_rights_requests import FULFIL, REVIEW, customer, officer, received
from tests.test_sharing import employee

ISSUE_KEY = """
mutation ($id: ID!) { issueProcessorNoticeKey(id: $id) {
  __typename
  ... on NoticeKeyIssued { noticeKey processor { noticeUrl hasNoticeKey } }
  ... on InputError { code field } } }
"""
RECIPIENTS = """
query ($status: RecipientNoticeStatus, $escalated: Boolean) {
  recipientNotices(status: $status, escalated: $escalated) {
    id recipient status channel sends escalatedAt } }
"""
EXCUSE = """
mutation ($id: ID!, $reason: String!) { excuseRecipientNotice(id: $id, reason: $reason) {
  __typename ... on RecipientNotice { status reason } ... on RightsError { code } } }
"""
REQUEST_RECIPIENTS = """
query { rightsRequests(first: 5) { edges { node { id status
  recipients { recipient categories channel status outcome reason sends } } } } }
"""
_LINK = re.compile(r"https://shop\.example\.test(/notices/\S+)")


async def registered(
    clock: FakeClock, name: str, *, url: str = "", contact: str = "dpo@processor.example"
) -> Processor:
    draft = ProcessorDraft(
        name=name,
        contact=contact,
        country="IE",
        contract_reference=f"DPA {name}",
        purposes=["marketing.email", "analytics"],
        categories=["contact.email", "behavior.browsing", "device.browser"],
        active_from=clock.now() - timedelta(days=90),
        notice_url=url,
    )
    return await create_processor(draft=draft, actor_id=uuid4(), now=clock.now())


async def disclosed(customer_id: UUID, clock: FakeClock, *entries: tuple[Any, ...]) -> None:
    """Ledger rows as shares write them: (recipient, processor id or None, categories,
    purpose, basis)."""
    await ledger.append(
        [
            ledger.Entry(
                at=clock.now() - timedelta(days=10),
                customer_id=customer_id,
                recipient=recipient,
                processor_id=processor_id,
                categories=list(categories),
                purpose=purpose,
                legal_basis=basis,
                recorded_by=uuid4(),
            )
            for recipient, processor_id, categories, purpose, basis in entries
        ]
    )


def contract(p: Processor, *categories: str, purpose: str = "marketing.email") -> tuple[Any, ...]:
    return (p.name, p.id, categories, purpose, ledger.LegalBasis.PROCESSOR_CONTRACT)


async def issue_key(gql: GQL, legal: str, receiver: Receiver, processor: Processor) -> None:
    body = await gql(ISSUE_KEY, {"id": str(processor.id)}, legal)
    answer = body["data"]["issueProcessorNoticeKey"]
    assert answer["processor"] == {"noticeUrl": receiver.url, "hasNoticeKey": True}
    assert re.fullmatch(r"[0-9a-f]{64}", answer["noticeKey"])
    receiver.key, receiver.processor_id = answer["noticeKey"], str(processor.id)


async def deliver(services: Services, mailbox: Mailbox) -> None:
    settings = smtp_to(services.settings, mailbox.port)
    while await deliver_pending(
        backend=SmtpBackend(settings), settings=settings, clock=services.clock
    ):
        pass


async def notice_of(name: str) -> RecipientNotice:
    return await RecipientNotice.get(recipient=name)


async def test_an_erasure_reaches_every_recipient_and_completes_when_all_answered(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    async def post(path: str, body: bytes, headers: dict[str, str]) -> Any:
        return await gql.client.post(path, content=body, headers=headers)

    mailer, analytics = Receiver(mode="ack", post=post), Receiver(mode="silent", post=post)
    # given Jane, whose data the ledger says went to three processors and to the police
    token, jane = await customer(gql)
    p_mailer = await registered(clock, "Mailer Ltd", url=mailer.url)
    p_analytics = await registered(clock, "Analytics BV", url=analytics.url)
    p_fraud = await registered(clock, "Fraud Checks SA", contact="privacy@fraud.example")
    await registered(clock, "Never Shared GmbH")
    await disclosed(
        jane.id,
        clock,
        contract(p_mailer, "contact.email"),
        contract(p_analytics, "behavior.browsing", purpose="analytics"),
        contract(p_analytics, "device.browser", purpose="analytics"),
        contract(p_fraud, "contact.email"),
        ("City Police", None, ["contact.email"], "", ledger.LegalBasis.COURT_ORDER),
    )
    legal = await employee(gql, services, "legal")
    await issue_key(gql, legal, mailer, p_mailer)
    await issue_key(gql, legal, analytics, p_analytics)
    # when her erasure request is fulfilled
    request_id = await received(gql, token, kind="ERASURE")
    officer_token = await officer(gql, services)
    await gql(REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, officer_token)
    fulfilled = (await gql(FULFIL, {"id": request_id}, officer_token))["data"]
    # then it waits for the three processors; the police are listed as not required
    assert fulfilled["fulfillRightsRequest"]["status"] == "NOTIFYING"
    notices = {n.recipient: n for n in await RecipientNotice.filter(request_id=request_id)}
    assert set(notices) == {"Mailer Ltd", "Analytics BV", "Fraud Checks SA", "City Police"}
    assert notices["Analytics BV"].categories == ["behavior.browsing", "device.browser"]
    assert notices["City Police"].status == "not_required"
    assert "court_order" in notices["City Police"].reason
    with Mailbox() as mailbox:
        async with serving(mailer, analytics):
            await deliver(services, mailbox)
            # the endpoints got signed notices naming only the customer id and categories
            for _ in range(200):
                if (await notice_of("Mailer Ltd")).status == "acknowledged":
                    break
                await asyncio.sleep(0.02)
        [notice] = mailer.received
        assert notice["event"] == "erasure"
        assert notice["request"] == request_id
        assert notice["subject"] == {"customerId": str(jane.id)}
        assert notice["categories"] == ["contact.email"]
        assert "jane" not in json.dumps(mailer.received + analytics.received).lower()
        assert mailer.rejected == analytics.rejected == 0
        assert mailer.answers == [200]
        assert (await notice_of("Mailer Ltd")).status == "acknowledged"
        assert (await notice_of("Analytics BV")).status == "notified"
        # and the processor with no endpoint got a mail with a single-use link
        [(_, subject, text)] = mailbox.to("privacy@fraud.example")
        assert "erase" in subject
        assert str(jane.id) in text
        assert "jane" not in text.lower()
        fraud = await notice_of("Fraud Checks SA")
        assert (fraud.channel, fraud.status) == ("mail", "notified")
        link = _LINK.search(text)
        assert link
        opened = await gql.client.get(link.group(1))
        assert opened.status_code == 200
        assert (await notice_of("Fraud Checks SA")).status == "notified"
        confirmed = await gql.client.post(link.group(1))
        assert confirmed.status_code == 200
        assert (await notice_of("Fraud Checks SA")).status == "acknowledged"
        assert (await gql.client.post(link.group(1))).status_code == 409
        # when Analytics stays silent: reminded after the chase interval, up to the limit
        async with serving(analytics):
            for _ in range(services.settings.recipient_chases - 1):
                clock.advance(hours=services.settings.recipient_chase_hours)
                assert (await chase.chase(services)).reminded == 1
                await deliver(services, mailbox)
        assert [n["notice"] for n in analytics.received] == [str(notices["Analytics BV"].id)] * 3
        assert len(set(analytics.deliveries)) == 3
        assert (await notice_of("Analytics BV")).escalated_at is None
        # then, its reminders spent, it is escalated to the privacy officers, once
        clock.advance(hours=services.settings.recipient_chase_hours)
        first = await chase.chase(services)
        assert (first.reminded, first.escalated) == (0, 1)
        assert (await chase.chase(services)).escalated == 0
        await deliver(services, mailbox)
        [(_, subject, text)] = mailbox.to("officer@staff.example.com")
        assert "Analytics BV" in subject
        assert request_id in text
    officer_token = await officer(gql, services, "officer-later")  # days later: a new session
    listed = (await gql(RECIPIENTS, {"escalated": True}, officer_token))["data"]
    assert [(n["recipient"], n["sends"]) for n in listed["recipientNotices"]] == [
        ("Analytics BV", 3)
    ]
    assert (await RightsRequest.get(id=request_id)).status == "notifying"
    # when the officer records why Analytics cannot answer, the request completes
    excused = await gql(
        EXCUSE,
        {"id": str(notices["Analytics BV"].id), "reason": "Ceased trading; data destroyed"},
        officer_token,
    )
    assert excused["data"]["excuseRecipientNotice"]["status"] == "NOT_REQUIRED"
    assert (await RightsRequest.get(id=request_id)).status == "completed"
    last = await RightsTransition.filter(request_id=request_id).order_by("-id").first()
    assert last is not None
    assert (last.from_status, last.to_status) == ("notifying", "completed")
    # and the officer's view shows each recipient and its answer
    view = (await gql(REQUEST_RECIPIENTS, {}, officer_token))["data"]["rightsRequests"]
    [node] = [e["node"] for e in view["edges"] if e["node"]["id"] == request_id]
    assert node["status"] == "COMPLETED"
    assert {r["recipient"]: (r["status"], r["outcome"]) for r in node["recipients"]} == {
        "Analytics BV": ("NOT_REQUIRED", None),
        "City Police": ("NOT_REQUIRED", None),
        "Fraud Checks SA": ("ACKNOWLEDGED", "DONE"),
        "Mailer Ltd": ("ACKNOWLEDGED", "DONE"),
    }
    # and every answer is in the decision log
    answers = await AuditEvent.filter(event="recipients").order_by("id")
    assert [(a.operation, a.decision) for a in answers] == [
        ("acknowledge", "allow"),
        ("acknowledge", "allow"),
        ("acknowledge", "deny"),
        ("excuse", "allow"),
    ]
    assert (await Customer.get(id=jane.id)).email != "jane.doe@example.com"
