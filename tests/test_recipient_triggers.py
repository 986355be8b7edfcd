"""What starts a notice, and what the customer is shown: a rectification tells only the
recipients of the categories it changed, and the customer's own view and completion mail
list them (but not one under a non-disclosure order); a withdrawn consent tells the
processors that received data for that purpose, and no others; a processor with an
endpoint but no key yet is mailed; a webhook that keeps failing ends failed and
escalated. Legal issues notice keys; anyone else is refused."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import jsonschema

from api.clock import FakeClock
from api.mail.sender import deliver_pending
from api.recipients import chase
from api.recipients.answers import acknowledge
from api.rights.export import build_export
from api.services import Services
from api.sharing import ledger
from api.sharing.processors import issue_notice_key
from models import AuditEvent, OutboxMessage, Processor, RecipientNotice, RightsRequest
from tests.conftest import GQL, mails
from tests.notice_receivers import Receiver, serving
from tests.test_consent import SET
from tests.test_recipient_notices import ISSUE_KEY, contract, disclosed, registered
from tests.test_rights_export import SCHEMA as EXPORT_SCHEMA
from tests.test_rights_requests import EXTEND, FULFIL, REVIEW, customer, officer, received
from tests.test_sharing import employee

MY_REQUESTS = """{ me { rightsRequests { id status
  recipients { recipient categories status channel } } } }"""
CHANGES = {"phone": "+44 20 7946 0111"}


async def test_a_rectification_tells_the_recipients_of_what_changed_and_the_customer_sees_them(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    token, jane = await customer(gql)
    phones = await registered(clock, "Phone Verify Ltd")
    emails = await registered(clock, "Mailer Ltd")
    secret = await registered(clock, "Secret Recipient Ltd")
    await disclosed(
        jane.id,
        clock,
        contract(phones, "contact.phone", "contact.email"),
        contract(emails, "contact.email"),
    )
    await ledger.append(
        [
            ledger.Entry(
                at=clock.now(),
                customer_id=jane.id,
                recipient=secret.name,
                processor_id=secret.id,
                categories=["contact.phone"],
                legal_basis=ledger.LegalBasis.PROCESSOR_CONTRACT,
                recorded_by=uuid4(),
                nondisclosure_until=clock.now() + timedelta(days=365),
            )
        ]
    )
    request_id = await received(gql, token, kind="RECTIFICATION", changes=CHANGES)
    officer_token = await officer(gql, services)
    await gql(REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, officer_token)
    node = (await gql(FULFIL, {"id": request_id}, officer_token))["data"]["fulfillRightsRequest"]
    # only the phone's recipients are told, of the phone only
    assert node["status"] == "NOTIFYING"
    told = {n.recipient: n.categories for n in await RecipientNotice.filter(request_id=request_id)}
    assert told == {
        "Phone Verify Ltd": ["contact.phone"],
        "Secret Recipient Ltd": ["contact.phone"],
    }
    # Jane sees the one not under a non-disclosure order, in her view and her mail
    mine = (await gql(MY_REQUESTS, {}, token))["data"]["me"]["rightsRequests"]
    assert mine[0]["status"] == "NOTIFYING"
    assert mine[0]["recipients"] == [
        {
            "recipient": "Phone Verify Ltd",
            "categories": ["contact.phone"],
            "status": "PENDING",
            "channel": "MAIL",
        }
    ]
    [done] = await mails("rights_completed", "jane.doe@example.com")
    assert "Phone Verify Ltd" in done.body_text
    assert "Secret Recipient" not in done.body_text
    # and her access export lists it, with its answer once it comes, in the documented format
    await acknowledge(
        notice_id=(await RecipientNotice.get(recipient="Phone Verify Ltd")).id,
        processor_id=None,
        outcome="no_record",
        note="",
        now=clock.now(),
    )
    document = await build_export(customer_id=jane.id, include=lambda _: True, now=clock.now())
    jsonschema.validate(document, EXPORT_SCHEMA)
    [exported] = [r for r in document["rightsRequests"] if r["id"] == request_id]
    assert exported["status"] == "notifying"
    assert [(r["recipient"], r["status"], r["outcome"]) for r in exported["recipients"]] == [
        ("Phone Verify Ltd", "acknowledged", "no_record")
    ]
    # while it waits for them it can be neither extended nor cancelled
    extend = {"id": request_id, "reason": "complex", "months": 1}
    refused = (await gql(EXTEND, extend, officer_token))["data"]["extendRightsRequest"]
    assert refused["code"] == "INVALID_TRANSITION"
    assert (await RightsRequest.get(id=request_id)).status == "notifying"


async def test_a_withdrawn_consent_tells_the_processors_of_that_purpose_only(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    token, jane = await customer(gql)
    mailer = await registered(clock, "Mailer Ltd")
    analytics = await registered(clock, "Analytics BV")
    await disclosed(
        jane.id,
        clock,
        contract(mailer, "contact.email", purpose="marketing.email"),
        contract(analytics, "behavior.browsing", purpose="analytics"),
    )
    await gql(SET, {"purpose": "marketing.email", "granted": True}, token)
    assert await RecipientNotice.all().count() == 0  # a grant tells nobody
    body = await gql(SET, {"purpose": "marketing.email", "granted": False}, token)
    assert body["data"]["setConsent"]["changed"] is True
    [notice] = await RecipientNotice.all()
    assert (notice.recipient, notice.trigger, notice.purpose, notice.request_id) == (
        "Mailer Ltd",
        "consent_withdrawn",
        "marketing.email",
        None,
    )
    assert notice.categories == ["contact.email"]
    # withdrawing again changes nothing and tells nobody again
    again = await gql(SET, {"purpose": "marketing.email", "granted": False}, token)
    assert again["data"]["setConsent"]["changed"] is False
    assert await RecipientNotice.all().count() == 1
    [queued] = await OutboxMessage.filter(kind="recipient_notice")
    assert (queued.channel, queued.recipient) == ("mail", "dpo@processor.example")
    assert "stop using" in queued.subject
    assert "jane" not in queued.body_text.lower()


async def test_an_endpoint_without_a_key_is_mailed_and_a_failing_one_ends_escalated(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    async def post(path: str, body: bytes, headers: dict[str, str]) -> object:
        return await gql.client.post(path, content=body, headers=headers)

    broken = Receiver(mode="fail", post=post)
    token, jane = await customer(gql)
    keyless = await registered(clock, "Keyless Ltd", url="https://keyless.example/hook")
    failing = await registered(clock, "Failing Ltd", url=broken.url)
    broken.key = await issue_notice_key(processor_id=failing.id, actor_id=uuid4(), now=clock.now())
    await disclosed(
        jane.id, clock, contract(keyless, "contact.email"), contract(failing, "contact.email")
    )
    await gql(SET, {"purpose": "marketing.email", "granted": False}, token)
    by_name = {n.recipient: n for n in await RecipientNotice.all()}
    assert by_name["Keyless Ltd"].channel == "mail"
    assert by_name["Failing Ltd"].channel == "webhook"
    settings = services.settings.model_copy(update={"mail_retry_hours": 1.0})
    async with serving(broken):
        for _ in range(8):
            await deliver_pending(backend=_Discard(), settings=settings, clock=clock)
            clock.advance(minutes=20)
    row = await OutboxMessage.get(kind="recipient_notice", channel="webhook")
    assert (row.status, row.last_error) == ("dead", "WebhookRefused")
    failed = await RecipientNotice.get(recipient="Failing Ltd")
    assert failed.status == "failed"
    assert "WebhookRefused" in failed.reason
    assert (await RecipientNotice.get(recipient="Keyless Ltd")).status == "notified"
    await officer(gql, services)
    assert (await chase.chase(services)).escalated == 1
    assert (await RecipientNotice.get(recipient="Failing Ltd")).escalated_at is not None
    [alert] = await OutboxMessage.filter(kind="recipient_escalation")
    assert alert.recipient == "officer@staff.example.com"
    assert "Failing Ltd" in alert.subject


class _Discard:
    async def send(self, message: object) -> None:
        return None


async def test_only_legal_issues_notice_keys_and_each_refusal_is_logged(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    p = await registered(clock, "Mailer Ltd", url="https://mailer.example/hooks")
    for role in ("marketing", "privacy_officer", "admin", "auditor"):
        staff = await employee(gql, services, role)
        body = await gql(ISSUE_KEY, {"id": str(p.id)}, staff)
        assert body["data"]["issueProcessorNoticeKey"] is None, role
    assert (await Processor.get(id=p.id)).notice_secret == ""
    assert (
        await AuditEvent.filter(decision="deny", operation="issueProcessorNoticeKey").count() == 4
    )
    legal = await employee(gql, services, "legal")
    unknown = await gql(ISSUE_KEY, {"id": str(uuid4())}, legal)
    assert unknown["data"]["issueProcessorNoticeKey"]["code"] == "NOT_FOUND"
    first = (await gql(ISSUE_KEY, {"id": str(p.id)}, legal))["data"]["issueProcessorNoticeKey"]
    second = (await gql(ISSUE_KEY, {"id": str(p.id)}, legal))["data"]["issueProcessorNoticeKey"]
    assert first["noticeKey"] != second["noticeKey"]
    assert (await Processor.get(id=p.id)).notice_secret == second["noticeKey"]
    logged = await AuditEvent.filter(operation="notice_key")
    assert len(logged) == 2
    assert all(first["noticeKey"] not in e.reason for e in logged)
