"""Marketing campaigns (issue 6): exactly the customers who consent to marketing email at
send time, with a verified address, get one message each, with RFC 8058 one-click
unsubscribe headers; queueing resumes after a crash without sending twice; marketing staff
never see an address, and each address read is in the decision log."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller

from api.clock import FakeClock
from api.mail.sender import ConsoleBackend, SmtpBackend, deliver_pending
from api.marketing import campaigns
from api.marketing.campaigns import queue_campaigns
from api.services import Services
from api.settings import Settings
from authz.log_tree import integrate
from models import AuditEvent, AuditSubject, ConsentRecord, Customer, OutboxMessage
from tests.conftest import GQL, signed_in_employee, stored_customer
from tests.test_email import (  # noqa: F401 (smtp_server is a fixture)
    Recorder,
    free_port,
    smtp_server,
    smtp_settings,
)

CREATE = """
mutation ($subject: String!, $text: String!, $html: String!, $purpose: String!) {
  createCampaign(subject: $subject, bodyText: $text, bodyHtml: $html, purpose: $purpose) {
    __typename
    ... on Campaign { id status recipients skipped }
    ... on InputError { code field message } } }
"""
SEND = """
mutation ($id: ID!) { sendCampaign(id: $id) {
  __typename ... on Campaign { id status } ... on InputError { code message } } }
"""
LIST = "{ campaigns { id subject status recipients skipped delivered } }"
_URL = re.compile(r"<(https://[^>]+)>")


async def audience(clock: FakeClock, *, consenting: int, withdrawn: int = 0) -> list[Customer]:
    """Verified customers: `consenting` who gave marketing email consent, `withdrawn` who
    gave it then withdrew, plus one who never answered and one consenting unverified."""
    people = []
    for n in range(consenting + withdrawn + 2):
        customer = await stored_customer(n, at=clock.now())
        people.append(customer)
        if n < consenting + withdrawn or n == consenting + withdrawn + 1:
            await ConsentRecord.create(
                customer=customer,
                purpose="marketing.email",
                granted=True,
                source="registration",
                at=clock.now(),
            )
        if consenting <= n < consenting + withdrawn:
            await ConsentRecord.create(
                customer=customer,
                purpose="marketing.email",
                granted=False,
                source="preference_centre",
                at=clock.now() + timedelta(seconds=1),
            )
    unverified = people[-1]
    unverified.email_verified_at = None
    await unverified.save()
    return people[:consenting]


async def draft(gql: GQL, token: str, **overrides: str) -> dict[str, Any]:
    variables = {
        "subject": "Spring rings",
        "text": "Our spring collection is here.",
        "html": "<p>Our <b>spring</b> collection is here.</p>",
        "purpose": "marketing.email",
        **overrides,
    }
    body = await gql(CREATE, variables, token)
    result: dict[str, Any] = body["data"]["createCampaign"]
    return result


async def sending(gql: GQL, services: Services, **settings: Any) -> str:
    """A campaign sent by a marketer (with these settings in force); returns its id."""
    if settings:
        services.settings = services.settings.model_copy(update=settings)
    token = await marketer(gql, services)
    campaign = await draft(gql, token)
    await gql(SEND, {"id": campaign["id"]}, token)
    campaign_id: str = campaign["id"]
    return campaign_id


async def received_once_each(people: list[Customer]) -> None:
    messages = await OutboxMessage.filter(kind="marketing")
    assert sorted(m.recipient for m in messages) == sorted(c.email for c in people)


async def marketer(gql: GQL, services: Services) -> str:
    token, _ = await signed_in_employee(gql, services, "marketing")
    gql.client.cookies.clear()
    return token


async def test_exactly_the_consenting_customers_get_one_message(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given 3 consenting customers, 2 who withdrew, 1 who never said, 1 unverified
    consenting = await audience(clock, consenting=3, withdrawn=2)
    token = await marketer(gql, services)
    # when marketing writes and sends a campaign, and the queue runs
    campaign = await draft(gql, token)
    assert campaign["status"] == "draft"
    sent = await gql(SEND, {"id": campaign["id"]}, token)
    assert sent["data"]["sendCampaign"]["status"] == "sending"
    await queue_campaigns(services=services)
    # then each consenting customer has exactly one message, nobody else any
    await received_once_each(consenting)
    # and marketing sees counts, never an address
    body = await gql(LIST, token=token)
    [row] = body["data"]["campaigns"]
    assert (row["status"], row["recipients"], row["skipped"]) == ("sent", 3, 3)
    assert "@" not in str(body)
    # and each address read is logged for the sender, purpose marketing.email
    reads = await AuditEvent.filter(category="contact.email", purpose="marketing.email")
    assert {(e.action, e.decision) for e in reads} == {("read", "allow")}
    await integrate()  # the subject index is written as rows join the tree
    subjects = await AuditSubject.filter(event_id__in=[e.id for e in reads])
    assert sorted(s.subject_id for s in subjects) == sorted(str(c.id) for c in consenting)


async def test_each_message_carries_one_click_unsubscribe(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    [jane] = await audience(clock, consenting=1)
    token = await marketer(gql, services)
    campaign = await draft(gql, token)
    await gql(SEND, {"id": campaign["id"]}, token)
    await queue_campaigns(services=services)
    [message] = await OutboxMessage.filter(kind="marketing")
    urls = _URL.findall(message.headers["List-Unsubscribe"])
    assert len(urls) == 1
    assert urlsplit(urls[0]).scheme == "https"
    assert urls[0].startswith(f"{services.settings.public_url}/unsubscribe/")
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert urls[0] in message.body_text
    assert urls[0] in message.body_html
    assert str(jane.id) not in urls[0]  # an opaque token, not the customer id


async def test_the_console_backend_prints_both_bodies_of_a_campaign(
    gql: GQL, services: Services, settings: Settings, clock: FakeClock
) -> None:
    # given a queued campaign (plain text and HTML) for two consenting customers
    await audience(clock, consenting=2)
    await sending(gql, services)
    await queue_campaigns(services=services)
    stream = io.StringIO()
    # when the development backend delivers it
    delivered = 0
    for _ in range(4):  # marketing mail is spread out: a round may send one
        delivered += await deliver_pending(
            backend=ConsoleBackend(stream), settings=settings, clock=clock
        )
        clock.advance(minutes=1)
    # then both messages are printed with both bodies and marked sent, none left pending
    printed = stream.getvalue()
    assert delivered == 2
    assert printed.count("----- mail -----") == 2
    assert printed.count("--- text/plain\nOur spring collection is here.") == 2
    assert printed.count("--- text/html\n<p>Our <b>spring</b> collection is here.</p>") == 2
    rows = await OutboxMessage.filter(kind="marketing")
    assert sorted(r.status for r in rows) == ["sent", "sent"]


async def test_delivered_over_smtp_with_headers_and_both_bodies(
    gql: GQL,
    services: Services,
    settings: Settings,
    clock: FakeClock,
    smtp_server: tuple[Recorder, int],  # noqa: F811
) -> None:
    handler, port = smtp_server
    [jane] = await audience(clock, consenting=1)
    await sending(gql, services)
    await queue_campaigns(services=services)
    smtp = smtp_settings(settings, port)
    clock.advance(seconds=5)
    delivered = await deliver_pending(backend=SmtpBackend(smtp), settings=smtp, clock=clock)
    assert delivered == 1
    [envelope] = handler.envelopes
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == jane.email
    assert len(_URL.findall(message["List-Unsubscribe"])) == 1
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "Unsubscribe" in text.get_content()
    assert "<b>spring</b>" in html.get_content()


async def test_queueing_resumes_after_a_crash_without_sending_twice(
    gql: GQL, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    consenting = await audience(clock, consenting=7)
    await sending(gql, services, campaign_batch=3)
    # given the second batch fails half way (the process dies while inserting)
    real = OutboxMessage.bulk_create
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("the database went away")
        return await real(*args, **kwargs)

    monkeypatch.setattr(OutboxMessage, "bulk_create", flaky)
    with pytest.raises(ConnectionError):
        await queue_campaigns(services=services)
    first_batch = await OutboxMessage.filter(kind="marketing").count()
    assert 0 < first_batch <= 3  # the first batch committed; the second rolled back
    # when the queue runs again
    monkeypatch.setattr(OutboxMessage, "bulk_create", real)
    await queue_campaigns(services=services)
    # then everyone has exactly one message
    await received_once_each(consenting)


async def test_concurrent_queues_never_send_twice(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    consenting = await audience(clock, consenting=12)
    await sending(gql, services, campaign_batch=2)
    await asyncio.gather(*(queue_campaigns(services=services) for _ in range(3)))
    await received_once_each(consenting)


async def test_a_withdrawal_during_sending_is_honoured_for_later_batches(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    consenting = await audience(clock, consenting=4)
    await sending(gql, services, campaign_batch=2)
    await queue_campaigns(services=services, limit_batches=1)
    last = sorted(consenting, key=lambda c: str(c.id))[-1]  # in a later batch (id order)
    await ConsentRecord.create(
        customer=last,
        purpose="marketing.email",
        granted=False,
        source="unsubscribe_link",
        at=clock.now() + timedelta(seconds=1),
    )
    clock.advance(seconds=2)
    await queue_campaigns(services=services)
    recipients = {m.recipient for m in await OutboxMessage.filter(kind="marketing")}
    assert last.email not in recipients
    assert len(recipients) == 3


async def test_messages_are_spread_at_the_configured_rate(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await audience(clock, consenting=5)
    await sending(gql, services, campaign_per_second=2.0)
    await queue_campaigns(services=services)
    slots = sorted(m.next_attempt_at for m in await OutboxMessage.filter(kind="marketing"))
    gaps = {(b - a).total_seconds() for a, b in pairwise(slots)}
    assert gaps == {0.5}
    assert slots[0] == clock.now()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"text": "  "}, "bodyText"),
        ({"subject": ""}, "subject"),
        ({"purpose": "gossip"}, "purpose"),
        ({"purpose": "analytics"}, "purpose"),
    ],
)
async def test_bad_campaigns_are_typed_errors(
    gql: GQL, services: Services, overrides: dict[str, str], field: str
) -> None:
    token = await marketer(gql, services)
    result = await draft(gql, token, **overrides)
    assert (result["__typename"], result["code"], result["field"]) == (
        "InputError",
        "VALIDATION",
        field,
    )
    assert await campaigns.Campaign.all().count() == 0


async def test_sending_needs_the_marketing_role_and_a_draft(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await audience(clock, consenting=2)
    token = await marketer(gql, services)
    campaign = await draft(gql, token)
    care_token, care_id = await signed_in_employee(gql, services, "customer_care")
    gql.client.cookies.clear()
    refused = await gql(SEND, {"id": campaign["id"]}, care_token)
    assert refused["data"]["sendCampaign"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await AuditEvent.get(actor_id=care_id, operation="sendCampaign")).decision == "deny"
    await queue_campaigns(services=services)
    assert await OutboxMessage.filter(kind="marketing").count() == 0
    assert (await campaigns.Campaign.get(id=campaign["id"])).status == "draft"
    # sending twice, or an unknown campaign, is a typed error
    await gql(SEND, {"id": campaign["id"]}, token)
    again = await gql(SEND, {"id": campaign["id"]}, token)
    assert again["data"]["sendCampaign"]["code"] == "INVALID_TRANSITION"
    unknown = await gql(SEND, {"id": "00000000-0000-0000-0000-000000000000"}, token)
    assert unknown["data"]["sendCampaign"]["code"] == "NOT_FOUND"
    garbage = await gql(SEND, {"id": "not-an-id"}, token)
    assert garbage["data"]["sendCampaign"]["code"] == "NOT_FOUND"


async def test_one_connection_serves_many_messages_and_is_reopened_when_dropped(
    gql: GQL, services: Services, settings: Settings, clock: FakeClock
) -> None:
    """The SMTP connection stays open between messages; when the server goes away and
    comes back, the next delivery opens a new one instead of failing."""
    handler = Recorder()
    port = free_port()
    server = Controller(handler, hostname="127.0.0.1", port=port)
    server.start()
    await audience(clock, consenting=3)
    await sending(gql, services)
    await queue_campaigns(services=services)
    smtp = smtp_settings(settings, port)
    backend = SmtpBackend(smtp)
    try:
        clock.advance(seconds=5)
        assert await deliver_pending(backend=backend, settings=smtp, clock=clock) == 3
        server.stop()  # the server restarts: the open connection is gone
        server = Controller(handler, hostname="127.0.0.1", port=port)
        server.start()
        await stored_customer(99, at=clock.now())
        await OutboxMessage.create(
            kind="verify_email",
            recipient="jane99@example.com",
            subject="s",
            body_text="b",
            next_attempt_at=clock.now(),
            created_at=clock.now(),
        )
        assert await deliver_pending(backend=backend, settings=smtp, clock=clock) == 1
    finally:
        await backend.close()
        server.stop()
    assert len(handler.envelopes) == 4


async def test_transactional_mail_reaches_a_customer_without_marketing_consent(
    gql: GQL, services: Services
) -> None:
    """A customer who withdrew marketing email still gets the mail their own actions need,
    and none of it carries marketing headers or content."""
    from tests.conftest import login, register

    await register(gql, consents=[{"purpose": "marketing.email", "granted": False}])
    token = await login(gql)
    gql.client.cookies.clear()
    submit = "mutation { submitRightsRequest(kind: ACCESS) { __typename } }"
    assert (await gql(submit, token=token))["data"]["submitRightsRequest"]["__typename"] == (
        "RightsRequestReceipt"
    )
    transactional = await OutboxMessage.filter(recipient="jane.doe@example.com")
    assert {m.kind for m in transactional} == {"verify_email", "rights_code"}
    for message in transactional:
        assert "List-Unsubscribe" not in (message.headers or {})
        assert "unsubscribe" not in message.body_text.lower()
        assert message.campaign_id is None
