"""One-click unsubscribe (policy section 5.2, docs/ARCHITECTURE.md: mail, RFC 8058): signed links,
`GET` and `POST /unsubscribe/{token}`, and the `unsubscribe` mutation. Every refusal is
asserted to change nothing and to be audited."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from pydantic import ValidationError

import authz.audit
from api.clock import FakeClock
from api.consent.service import may_process
from api.marketing.unsubscribe_tokens import (
    InvalidUnsubscribeToken,
    read_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)
from api.security.refusal_limit import REFUSALS_PER_IP
from api.services import Services
from api.settings import Settings
from authz.audit import verify
from models import AuditEvent, ConsentRecord, Customer
from tests.conftest import GQL, TEST_SECRET, login, register

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
UNSUBSCRIBE = """
mutation ($token: String!) { unsubscribe(token: $token) {
  __typename ... on Unsubscribed { purpose changed } ... on TokenError { code message } } }
"""
SET_CONSENT = """
mutation ($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) { __typename ... on ConsentSet { changed } } }
"""
CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'"
LOADED = re.compile(r'<(?:link|img)\b[^>]*\s(?:href|src)="([^"]*)"')
"""What a page loads: the centre's style sheets (and an empty icon), nothing else."""
CENTRE_STYLES = {"data:,", "/privacy/static/centre.css", "/privacy/theme.css"}


# --- helpers -------------------------------------------------------------------------------


async def customer_with(gql: GQL, *purposes: str) -> Customer:
    """A registered customer who consented to `purposes` at registration."""
    await register(gql, consents=[{"purpose": p, "granted": True} for p in purposes])
    gql.client.cookies.clear()
    return await Customer.get()


def token_for(
    customer_id: UUID, purpose: str = "marketing.email", *, at: datetime | None = None
) -> str:
    return unsubscribe_token(
        secret=TEST_SECRET,
        customer_id=customer_id,
        purpose=purpose,
        issued_at=at or FakeClock().now(),
    )


def flip(token: str, index: int) -> str:
    """The token with one character changed."""
    swapped = "B" if token[index] == "A" else "A"
    return token[:index] + swapped + token[index + 1 :]


async def post(client: httpx.AsyncClient, token: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("data", ONE_CLICK)
    return await client.post(f"/unsubscribe/{token}", **kwargs)


async def records(purpose: str | None = None) -> list[tuple[str, bool, str]]:
    query = ConsentRecord.all().order_by("id")
    if purpose:
        query = query.filter(purpose=purpose)
    return [(r.purpose, r.granted, r.source) for r in await query]


async def unsubscribe_events() -> list[tuple[str, str, str, str, str, str]]:
    rows = await AuditEvent.filter(event="consent", operation="unsubscribe").order_by("id")
    return [(e.decision, e.actor_kind, e.actor_id, e.subject_id, e.purpose, e.reason) for e in rows]


async def assert_token_not_logged(token: str) -> None:
    for row in await AuditEvent.all().values():
        assert token not in " ".join(str(v) for v in row.values())


def assert_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith(CSP)
    assert response.headers["cache-control"] == "no-store"
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert not re.search(r"<(script|iframe|style)\b|\sstyle=|https?://", response.text)
    assert set(LOADED.findall(response.text)) == CENTRE_STYLES


# --- the token -----------------------------------------------------------------------------


def test_a_token_is_compact_url_safe_and_reads_back() -> None:
    customer_id = uuid4()
    now = FakeClock().now()
    for purpose in ("marketing.email", "personalization"):
        token = token_for(customer_id, purpose)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert len(token) < 120
        assert read_unsubscribe_token(
            secret=TEST_SECRET, token=token, now=now, max_age_days=400
        ) == (customer_id, purpose)
    assert token_for(customer_id) != token_for(customer_id, "analytics")
    assert token_for(customer_id) != token_for(uuid4())


def test_a_token_lasts_its_whole_last_day_and_not_one_more() -> None:
    issued = datetime(2026, 1, 1, 23, 59, tzinfo=UTC)
    token = token_for(uuid4(), at=issued)

    def read(at: datetime) -> tuple[UUID, str]:
        return read_unsubscribe_token(secret=TEST_SECRET, token=token, now=at, max_age_days=400)

    read(datetime(2027, 2, 5, 23, 59, tzinfo=UTC))  # day 400
    with pytest.raises(InvalidUnsubscribeToken) as refused:
        read(datetime(2027, 2, 6, 0, 0, tzinfo=UTC))  # day 401
    assert refused.value.code == "EXPIRED"


def shortened(token: str) -> str:
    """The token cut to a length no base64 spelling has (len % 4 == 1). Cutting a single
    character can leave a valid spelling of shorter bytes (1 time in 16), which is then
    refused as TAMPERED instead: not what this case is about."""
    cut = token[:-1]
    while len(cut) % 4 != 1:
        cut = cut[:-1]
    return cut


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda t: flip(t, 5), "TAMPERED"),  # in the customer id
        (lambda t: flip(t, 30), "TAMPERED"),  # in the purpose
        (lambda t: flip(t, -3), "TAMPERED"),  # in the signature
        (lambda t: shortened(t), "MALFORMED"),
        (lambda t: t + "=", "MALFORMED"),
        (lambda t: t.replace("_", "/").replace("-", "+") + "/+", "MALFORMED"),
        (lambda t: "", "MALFORMED"),
        (lambda t: "A" * 10_000, "MALFORMED"),
        (lambda t: "AQ", "MALFORMED"),
        (lambda t: "é" * 20, "MALFORMED"),
    ],
)
def test_a_changed_token_is_refused(mangle: Any, code: str) -> None:
    token = token_for(uuid4())
    with pytest.raises(InvalidUnsubscribeToken) as refused:
        read_unsubscribe_token(
            secret=TEST_SECRET, token=mangle(token), now=FakeClock().now(), max_age_days=400
        )
    assert refused.value.code == code


def test_another_key_or_a_purpose_without_consent_is_refused() -> None:
    now = FakeClock().now()
    with pytest.raises(InvalidUnsubscribeToken) as refused:
        read_unsubscribe_token(
            secret="another-secret", token=token_for(uuid4()), now=now, max_age_days=400
        )
    assert refused.value.code == "TAMPERED"
    customer_id = uuid4()
    with pytest.raises(InvalidUnsubscribeToken) as refused:
        read_unsubscribe_token(
            secret=TEST_SECRET, token=token_for(customer_id, "service"), now=now, max_age_days=400
        )
    assert (refused.value.code, refused.value.customer_id) == ("UNKNOWN_PURPOSE", customer_id)


def test_the_url() -> None:
    token = token_for(uuid4())
    expected = f"https://shop.example/unsubscribe/{token}"
    assert unsubscribe_url(public_url="https://shop.example/", token=token) == expected
    assert unsubscribe_url(public_url="https://shop.example", token=token) == expected


# --- POST: one click -----------------------------------------------------------------------


async def test_one_click_withdraws_at_once_without_cookie_or_sign_in(
    gql: GQL, services: Services
) -> None:
    # given a customer who agreed to marketing email, and the link of a message to them
    customer = await customer_with(gql, "marketing.email")
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    token = token_for(customer.id)
    # when a mail client posts the one-click body, with no cookie and no Authorization
    assert not gql.client.cookies
    response = await post(gql.client, token)
    assert "authorization" not in response.request.headers
    assert "cookie" not in response.request.headers
    # then 200 with a short page, no redirect
    assert_page(response, 200)
    assert not response.is_redirect
    assert "You are unsubscribed" in response.text
    assert "Marketing email" in response.text
    # and the consent is withdrawn at once, with the same kind of record as setConsent
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )
    assert await records("marketing.email") == [
        ("marketing.email", True, "registration"),
        ("marketing.email", False, "unsubscribe_link"),
    ]
    # and audited as the customer's own act
    cid = str(customer.id)
    assert await unsubscribe_events() == [("allow", "customer", cid, cid, "marketing.email", "")]
    await assert_token_not_logged(token)
    assert (await verify()).ok


async def test_a_second_click_changes_nothing_and_answers_the_same(gql: GQL) -> None:
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id)
    first = await post(gql.client, token)
    # when the same link is clicked again
    second = await post(gql.client, token)
    # then the same answer and no new record
    assert_page(second, 200)
    assert second.text == first.text
    assert len(await records("marketing.email")) == 2
    cid = str(customer.id)
    assert await unsubscribe_events() == [
        ("allow", "customer", cid, cid, "marketing.email", ""),
        ("allow", "customer", cid, cid, "marketing.email", "unchanged"),
    ]


async def test_a_multipart_one_click_body_works_too(gql: GQL, services: Services) -> None:
    customer = await customer_with(gql, "marketing.email")
    response = await post(
        gql.client,
        token_for(customer.id),
        data=None,
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert_page(response, 200)
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"content": b""},
        {"data": {"List-Unsubscribe": "Other"}},
        {"data": {"list-unsubscribe": "one-click"}},
        {"json": ONE_CLICK},
        {"content": b"\xff\xfe garbage", "headers": {"content-type": "multipart/form-data"}},
        {"content": b"--x\r\n\r\n--x--", "headers": {"content-type": "multipart/form-data; b"}},
        {"content": b"&".join([b"a=b"] * 50) + b"&List-Unsubscribe=One-Click"},
    ],
)
async def test_a_post_without_the_one_click_body_changes_nothing(
    gql: GQL, services: Services, body: dict[str, Any]
) -> None:
    # given a customer and a valid link
    customer = await customer_with(gql, "marketing.email")
    before = await records()
    # when something posts to it without `List-Unsubscribe=One-Click`
    response = await post(gql.client, token_for(customer.id), **{"data": None, **body})
    # then 400 and nothing changed, and the refusal is logged
    assert_page(response, 400)
    assert await records() == before
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    assert await unsubscribe_events() == [("deny", "anonymous", "", "", "", "NOT_ONE_CLICK")]


# --- refused links -------------------------------------------------------------------------


async def assert_refused(
    gql: GQL,
    services: Services,
    customer: Customer,
    token: str,
    *,
    code: str,
    status: int = 400,
    subject: str = "",
    purpose: str = "",
) -> None:
    """Both methods answer `status`, nothing changes, the POST is logged as refused and
    the mutation answers a TokenError."""
    before = await records()
    for method in ("GET", "POST"):
        response = await gql.client.request(method, f"/unsubscribe/{token}", data=ONE_CLICK)
        assert_page(response, status)
        assert "Link not valid" in response.text
    assert await records() == before
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    assert await unsubscribe_events() == [("deny", "anonymous", "", subject, purpose, code)]
    body = await gql(UNSUBSCRIBE, {"token": token})
    expected = "TOKEN_EXPIRED" if code == "EXPIRED" else "INVALID_TOKEN"
    assert body["data"]["unsubscribe"]["code"] == expected
    assert await records() == before
    await assert_token_not_logged(token)


# Characters of the customer id, the issue day, the purpose and the signature.
@pytest.mark.parametrize("index", [3, 24, 30, -3])
async def test_a_tampered_link_is_refused(gql: GQL, services: Services, index: int) -> None:
    customer = await customer_with(gql, "marketing.email")
    tampered = flip(token_for(customer.id), index)
    await assert_refused(gql, services, customer, tampered, code="TAMPERED")


async def test_a_link_signed_with_another_key_is_refused(gql: GQL, services: Services) -> None:
    customer = await customer_with(gql, "marketing.email")
    forged = unsubscribe_token(
        secret="x" * 48,
        customer_id=customer.id,
        purpose="marketing.email",
        issued_at=FakeClock().now(),
    )
    await assert_refused(gql, services, customer, forged, code="TAMPERED")


@pytest.mark.parametrize("token", ["not-a-token", "A" * 5000, "AQ", "%00", "a.b", "x" * 70])
async def test_a_malformed_link_is_refused(gql: GQL, services: Services, token: str) -> None:
    customer = await customer_with(gql, "marketing.email")
    await assert_refused(gql, services, customer, token, code="MALFORMED")


async def test_a_flood_of_bad_clicks_is_cut_off_and_cannot_fill_the_log(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    customer = await customer_with(gql, "marketing.email")
    good = token_for(customer.id)
    bad = flip(good, 30)
    before = await records()
    # the first REFUSALS_PER_IP refused clicks (bad tokens, bodies not one-click) are logged
    for n in range(REFUSALS_PER_IP):
        response = await post(gql.client, bad, data={} if n % 2 else ONE_CLICK)
        assert response.status_code == 400
    # then each refusal, ten at once included, is a 429 page, and only the first is logged
    flood = await asyncio.gather(*(post(gql.client, bad) for _ in range(10)))
    flood.append(await post(gql.client, good, data={}))  # not one-click, a good token
    for response in flood:
        assert_page(response, 429)
        assert int(response.headers["Retry-After"]) >= 1
        assert "Too many attempts" in response.text
    reasons = [event[-1] for event in await unsubscribe_events()]
    assert reasons == ["TAMPERED", "NOT_ONE_CLICK"] * (REFUSALS_PER_IP // 2) + ["RATE_LIMITED"]
    assert await records() == before
    # and a good click from the same address still unsubscribes
    assert (await post(gql.client, good)).status_code == 200
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )
    # the limit is per window
    clock.advance(seconds=services.settings.mail_window_seconds)
    assert (await post(gql.client, bad)).status_code == 400


async def test_an_empty_or_slashed_path_is_not_found(gql: GQL, services: Services) -> None:
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id)
    for path in ("/unsubscribe/", "/unsubscribe", f"/unsubscribe/{token[:10]}/{token[10:]}"):
        response = await gql.client.post(path, data=ONE_CLICK)
        assert 400 <= response.status_code < 500
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    body = await gql(UNSUBSCRIBE, {"token": ""})
    assert body["data"]["unsubscribe"]["code"] == "INVALID_TOKEN"


async def test_an_expired_link_is_refused(gql: GQL, services: Services, clock: FakeClock) -> None:
    # given a link issued today
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id, at=clock.now())
    # when it is used on its 400th day, the confirmation page still opens
    clock.advance(days=400)
    assert (await gql.client.get(f"/unsubscribe/{token}")).status_code == 200
    # and a day later it is refused
    clock.advance(days=1)
    await assert_refused(
        gql,
        services,
        customer,
        token,
        code="EXPIRED",
        subject=str(customer.id),
        purpose="marketing.email",
    )


async def test_a_purpose_without_consent_is_refused(gql: GQL, services: Services) -> None:
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id, "service")
    await assert_refused(
        gql,
        services,
        customer,
        token,
        code="UNKNOWN_PURPOSE",
        subject=str(customer.id),
        purpose="service",
    )


async def test_a_link_of_an_unknown_customer_is_not_found(gql: GQL, services: Services) -> None:
    customer = await customer_with(gql, "marketing.email")
    stranger = uuid4()
    await assert_refused(
        gql,
        services,
        customer,
        token_for(stranger),
        code="UNKNOWN_CUSTOMER",
        status=404,
        subject=str(stranger),
        purpose="marketing.email",
    )


async def test_a_link_withdraws_only_its_own_purpose(gql: GQL, services: Services) -> None:
    # given a customer who agreed to marketing email and analytics
    customer = await customer_with(gql, "marketing.email", "analytics")
    # when the analytics link is used
    response = await post(gql.client, token_for(customer.id, "analytics"))
    assert_page(response, 200)
    # then analytics is withdrawn and marketing email is untouched
    assert not await may_process(services=services, customer_id=customer.id, purpose="analytics")
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    assert await records("marketing.email") == [("marketing.email", True, "registration")]


# --- GET: the confirmation page ------------------------------------------------------------


async def test_opening_the_link_changes_nothing(gql: GQL, services: Services) -> None:
    # given a customer and the link of a message to them
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id)
    before = await records()
    # when the link is opened (by the customer, a mail scanner, a link preview)
    response = await gql.client.get(f"/unsubscribe/{token}")
    head = await gql.client.head(f"/unsubscribe/{token}")
    # then a page with a button posting the one-click body to the same address
    assert_page(response, 200)
    assert head.status_code == 200
    assert re.search(r'<form method="post">', response.text)
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in response.text
    assert re.search(r"<button[^>]*>Unsubscribe</button>", response.text)
    assert "Marketing email" in response.text
    assert token not in response.text
    # and nothing changed or was logged as an unsubscribe
    assert await records() == before
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    assert await unsubscribe_events() == []


async def test_the_pages_button_unsubscribes(gql: GQL, services: Services) -> None:
    """What a browser does with the page's form: post its fields to the page's address."""
    customer = await customer_with(gql, "marketing.email")
    url = f"/unsubscribe/{token_for(customer.id)}"
    page = (await gql.client.get(url)).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page))
    response = await gql.client.post(url, data=fields)
    assert_page(response, 200)
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )


# --- GraphQL -------------------------------------------------------------------------------


async def test_the_mutation_unsubscribes_without_sign_in(gql: GQL, services: Services) -> None:
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id)
    first = await gql(UNSUBSCRIBE, {"token": token})
    second = await gql(UNSUBSCRIBE, {"token": token})
    assert first == {
        "data": {
            "unsubscribe": {
                "__typename": "Unsubscribed",
                "purpose": "marketing.email",
                "changed": True,
            }
        }
    }
    assert second["data"]["unsubscribe"]["changed"] is False
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )
    assert await records("marketing.email") == [
        ("marketing.email", True, "registration"),
        ("marketing.email", False, "unsubscribe_link"),
    ]
    cid = str(customer.id)
    assert await unsubscribe_events() == [
        ("allow", "customer", cid, cid, "marketing.email", ""),
        ("allow", "customer", cid, cid, "marketing.email", "unchanged"),
    ]
    await assert_token_not_logged(token)


async def test_a_signed_in_visitor_cannot_use_a_link_for_someone_else(gql: GQL) -> None:
    """The token decides whose consent changes, never the session (the actor logged is the
    customer the link names)."""
    ann = await customer_with(gql, "marketing.email")
    await register(
        gql, email="bob@example.com", consents=[{"purpose": "marketing.email", "granted": True}]
    )
    bob_token = await login(gql, "bob@example.com")
    body = await gql(UNSUBSCRIBE, {"token": token_for(ann.id)}, token=bob_token)
    assert body["data"]["unsubscribe"]["changed"] is True
    withdrawn = await ConsentRecord.filter(source="unsubscribe_link").values_list(
        "customer_id", flat=True
    )
    assert [str(c) for c in withdrawn] == [str(ann.id)]
    [event] = await AuditEvent.filter(operation="unsubscribe")
    assert (event.actor_kind, event.actor_id) == ("customer", str(ann.id))


# --- resubscribing, atomicity, logs ----------------------------------------------------------


async def test_only_the_customer_resubscribes(gql: GQL, services: Services) -> None:
    # given a customer who unsubscribed with the link
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id)
    await post(gql.client, token)
    # when the link is used again, it does not grant anything back
    assert_page(await post(gql.client, token), 200)
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )
    # and only the signed-in customer's own setConsent does
    session = await login(gql)
    body = await gql(SET_CONSENT, {"purpose": "marketing.email", "granted": True}, token=session)
    assert body["data"]["setConsent"] == {"__typename": "ConsentSet", "changed": True}
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    assert [s for _, _, s in await records("marketing.email")] == [
        "registration",
        "unsubscribe_link",
        "preference_centre",
    ]
    # and the same link withdraws the new grant again
    gql.client.cookies.clear()
    await post(gql.client, token)
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )


async def test_no_withdrawal_without_its_audit_event(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consent record and the audit event commit together: when the log cannot be
    written, the withdrawal is rolled back."""
    customer = await customer_with(gql, "marketing.email")

    async def broken(records: list[authz.audit.AuditRecord]) -> None:
        raise RuntimeError("the log is unavailable")

    monkeypatch.setattr(authz.audit, "append", broken)
    response = await post(gql.client, token_for(customer.id))
    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    monkeypatch.undo()
    assert await records("marketing.email") == [("marketing.email", True, "registration")]
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")


async def test_tokens_are_never_logged(gql: GQL, caplog: pytest.LogCaptureFixture) -> None:
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id)
    caplog.set_level(logging.DEBUG)
    await gql.client.get(f"/unsubscribe/{token}")
    await post(gql.client, token)
    await post(gql.client, flip(token, 5))
    await gql(UNSUBSCRIBE, {"token": token})
    # the test's own HTTP client logs the URLs it requests; the server logs nothing of them
    served = [
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert served
    assert not [m for m in served if token in m or flip(token, 5) in m]
    await assert_token_not_logged(token)
    assert (await verify()).ok


def test_the_settings_keep_links_for_months_and_a_mailbox_is_one_plain_address() -> None:
    assert Settings(env="development").unsubscribe_token_days == 400
    with pytest.raises(ValidationError):
        Settings(env="development", unsubscribe_token_days=7)
    mailbox = "unsubscribe@shop.example"
    assert Settings(env="development", unsubscribe_mailto=mailbox).unsubscribe_mailto == mailbox
    for bad in ("a@b>\r\nBcc: x@y", "two@a.example, three@b.example", "nobody", "a b@c"):
        with pytest.raises(ValidationError):
            Settings(env="development", unsubscribe_mailto=bad)
