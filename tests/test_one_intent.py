"""One record per intent under concurrency (issue 15, point 3): N identical requests sent at
once, over HTTP, have the effect of one: one record, one mail where one is sent, one answer
that changed something and the others a no-op or a typed duplicate. On PostgreSQL (READ
COMMITTED) every one of these stored several records before its operation was serialised
per customer (api/serial.py) or per row; see DECISIONS, "One record per intent"."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from api.services import Services
from models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    LegalHold,
    PolicyAcceptance,
    RightsRequest,
    RightsTransition,
    SupportCase,
)
from tests.conftest import (
    GQL,
    PASSWORD,
    REGISTER,
    VERIFY_EMAIL,
    login,
    mails,
    register,
    registration,
    signed_in_employee,
    verification_token,
)
from tests.test_profile import UPDATE_PROFILE
from tests.test_rights_erasure import PLACE
from tests.test_rights_requests import (
    REVIEW,
    SUBMIT,
    VERIFY,
    customer,
    last_code,
    officer,
    received,
)
from tests.test_unsubscribe import UNSUBSCRIBE, customer_with, token_for

N = 10
T = TypeVar("T")

SET_CONSENT = """
mutation ($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) {
    __typename ... on ConsentSet { changed } ... on InputError { code } } }
"""
OPEN_CASE = """
mutation ($subject: String!, $message: String!) {
  openSupportCase(subject: $subject, message: $message) {
    __typename ... on SupportCase { id } ... on InputError { code } } }
"""
ACCEPT = """
mutation ($version: String!) {
  acceptPolicy(version: $version) {
    __typename ... on PolicyAccepted { changed } ... on InputError { code } } }
"""


async def fan_in(
    gql: GQL, send: Callable[[httpx.AsyncClient], Awaitable[T]], n: int = N
) -> list[T]:
    """`send` `n` times, all in flight together, each from its own address (as from several
    devices: one address's requests would queue behind its mail rate counter and hide the
    race)."""
    app = gql.client._transport.app  # type: ignore[attr-defined]
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(f"198.51.100.{i + 1}", 40000)),
            base_url="https://testserver",
        )
        for i in range(n)
    ]
    try:
        return list(await asyncio.gather(*(send(c) for c in clients)))
    finally:
        for c in clients:
            await c.aclose()


async def at_once(gql: GQL, query: str, variables: dict[str, Any], token: str | None) -> list[Any]:
    """`N` identical GraphQL requests at once (`fan_in`); each answer's `data`."""
    bodies = await fan_in(gql, lambda c: GQL(c)(query, variables, token=token))
    for body in bodies:
        assert "errors" not in body, body
    return [next(iter(body["data"].values())) for body in bodies]


async def signed_in(gql: GQL, **overrides: Any) -> tuple[str, Customer]:
    await register(gql, **overrides)
    token = await login(gql, overrides.get("email", "jane.doe@example.com"))
    gql.client.cookies.clear()
    return token, await Customer.get(email=overrides.get("email", "jane.doe@example.com"))


async def test_set_consent_at_once_records_one_grant(gql: GQL) -> None:
    # given a customer who has not consented to analytics
    token, jane = await signed_in(gql)
    # when ten identical grants arrive at once
    answers = await at_once(gql, SET_CONSENT, {"purpose": "analytics", "granted": True}, token)
    # then one record is stored, and exactly one answer says it changed something
    assert [a["__typename"] for a in answers] == ["ConsentSet"] * N
    assert Counter(a["changed"] for a in answers) == {True: 1, False: N - 1}
    assert await ConsentRecord.filter(customer_id=jane.id, purpose="analytics").count() == 1


async def test_unsubscribe_at_once_records_one_withdrawal(gql: GQL) -> None:
    # given a customer who receives marketing email, and their unsubscribe link
    jane = await customer_with(gql, "marketing.email")
    token = token_for(jane.id)
    # when the link is used ten times at once
    answers = await at_once(gql, UNSUBSCRIBE, {"token": token}, None)
    # then one withdrawal is stored, and one answer says it changed something
    assert [a["__typename"] for a in answers] == ["Unsubscribed"] * N
    assert Counter(a["changed"] for a in answers) == {True: 1, False: N - 1}
    withdrawals = ConsentRecord.filter(customer_id=jane.id, source="unsubscribe_link")
    assert await withdrawals.count() == 1


async def test_a_privacy_signal_on_requests_at_once_records_one_opt_out(
    gql: GQL, services: Services
) -> None:
    # given a signed-in customer whose browser sends Sec-GPC: 1
    token, jane = await signed_in(gql, consents=[{"purpose": "marketing.ads", "granted": True}])
    headers = {"authorization": f"Bearer {token}", "sec-gpc": "1"}
    # when ten of its requests arrive at once
    query = {"query": "{ me { id } }"}
    responses = await fan_in(gql, lambda c: c.post("/graphql", json=query, headers=headers))
    assert all(r.json()["data"]["me"]["id"] == str(jane.id) for r in responses)
    # then one opt-out is recorded, and logged once
    assert await ConsentRecord.filter(customer_id=jane.id, source="gpc").count() == 1
    assert await AuditEvent.filter(event="consent", operation="gpc").count() == 1


async def test_submit_rights_request_at_once_opens_one_and_mails_one_code(gql: GQL) -> None:
    # given a signed-in customer
    token, jane = await customer(gql)
    # when ten identical erasure requests arrive at once
    variables = {"kind": "ERASURE", "details": "Forget me"}
    answers = await at_once(gql, SUBMIT, variables, token)
    # then one request is open, with one code mailed; every answer is that request, nine
    # of them saying it was already open
    assert {a["__typename"] for a in answers} == {"RightsRequestReceipt"}, answers
    assert len({a["id"] for a in answers}) == 1
    assert Counter(a["alreadyOpen"] for a in answers) == {False: 1, True: N - 1}
    assert await RightsRequest.filter(customer_id=jane.id).count() == 1
    assert len(await mails("rights_code", "jane.doe@example.com")) == 1


async def test_verify_rights_request_at_once_receives_it_once(gql: GQL) -> None:
    # given a request waiting for its code
    token, _ = await customer(gql)
    receipt = (await gql(SUBMIT, {"kind": "ACCESS", "details": "All"}, token=token))["data"]
    request_id, code = await last_code("jane.doe@example.com")
    assert receipt["submitRightsRequest"]["id"] == request_id
    # when the right code is entered ten times at once
    answers = await at_once(gql, VERIFY, {"id": request_id, "code": code}, token)
    # then the request is received once: one transition, one acknowledgement mailed
    assert Counter(a["__typename"] for a in answers) == {
        "RightsRequestReceipt": 1,
        "RightsError": N - 1,
    }
    assert {a["code"] for a in answers if a["__typename"] == "RightsError"} == {
        "INVALID_TRANSITION"
    }
    moves = RightsTransition.filter(request_id=request_id, to_status="pending")
    assert await moves.count() == 1
    assert len(await mails("rights_received")) == 1


async def test_review_at_once_decides_once(gql: GQL, services: Services) -> None:
    # given a received request and a privacy officer
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    officer_token = await officer(gql, services)
    # when ten identical approvals arrive at once
    variables = {"id": request_id, "decision": "APPROVE", "reason": ""}
    answers = await at_once(gql, REVIEW, variables, officer_token)
    # then it is approved once: one transition, one decision mailed
    assert Counter(a["__typename"] for a in answers) == {"RightsRequest": 1, "RightsError": N - 1}
    moves = RightsTransition.filter(request_id=request_id, to_status="approved")
    assert await moves.count() == 1
    assert len(await mails("rights_decided")) == 1


async def test_open_support_case_at_once_opens_one(gql: GQL) -> None:
    # given a signed-in customer
    token, jane = await signed_in(gql)
    # when the same case is sent ten times at once
    variables = {"subject": "Parcel", "message": "Where is my parcel?"}
    answers = await at_once(gql, OPEN_CASE, variables, token)
    # then one case is open, and every answer is that case
    assert [a["__typename"] for a in answers] == ["SupportCase"] * N
    assert len({a["id"] for a in answers}) == 1
    assert await SupportCase.filter(customer_id=jane.id).count() == 1
    # while a different question is a case of its own
    other = {"subject": "Parcel", "message": "And my other parcel?"}
    assert (await gql(OPEN_CASE, other, token=token))["data"]["openSupportCase"]["id"]
    assert await SupportCase.filter(customer_id=jane.id).count() == 2


async def test_accept_policy_at_once_records_one_acceptance(gql: GQL) -> None:
    # given a signed-in customer and the policy version in effect
    token, jane = await signed_in(gql)
    # when they accept it ten times at once
    answers = await at_once(gql, ACCEPT, {"version": "1"}, token)
    # then one acceptance is stored, and one answer says it changed something
    assert [a["__typename"] for a in answers] == ["PolicyAccepted"] * N
    assert Counter(a["changed"] for a in answers) == {True: 1, False: N - 1}
    assert await PolicyAcceptance.filter(customer_id=jane.id).count() == 1


async def test_register_at_once_creates_one_account_and_one_link(gql: GQL) -> None:
    # when ten identical registrations arrive at once
    answers = await at_once(gql, REGISTER, {"input": registration()}, None)
    # then every answer is the same, one account exists and one verification link is mailed
    # (the others are a known address's registration: the owner is told, as for any later one)
    assert [a["__typename"] for a in answers] == ["RegistrationAccepted"] * N, answers
    assert await Customer.all().count() == 1
    assert len(await mails("verify_email", "jane.doe@example.com")) == 1


async def test_place_legal_hold_at_once_places_one(gql: GQL, services: Services) -> None:
    # given a customer and legal
    _, jane = await signed_in(gql)
    legal, _ = await signed_in_employee(gql, services, "legal")
    gql.client.cookies.clear()
    # when the same hold is placed ten times at once
    variables = {
        "c": str(jane.id),
        "cats": ["contact.email", "support.cases"],
        "reason": "Litigation",
        "ref": "Case 2026-CV-0042",
        "exp": None,
    }
    answers = await at_once(gql, PLACE, variables, legal)
    # then one hold is placed; the others are typed duplicates
    assert Counter(a["__typename"] for a in answers) == {"LegalHoldPlaced": 1, "InputError": N - 1}
    duplicates = {(a["code"], a["field"]) for a in answers if a["__typename"] == "InputError"}
    assert duplicates == {("DUPLICATE_REQUEST", "reference")}
    assert await LegalHold.filter(customer_id=jane.id).count() == 1
    # while another order's hold on the same categories is a hold of its own
    other = await gql(PLACE, {**variables, "ref": "Tax audit 7"}, token=legal)
    assert other["data"]["placeLegalHold"]["__typename"] == "LegalHoldPlaced"


@pytest.mark.parametrize("round_", range(3))
async def test_accounts_confirming_one_new_address_at_once_give_it_to_one(
    gql: GQL, round_: int
) -> None:
    # given three customers (the most one address is mailed links for) who each asked to
    # move to the same new address, free when asked, so each got a real confirmation link
    new, n = f"shared.new{round_}@example.org", 3
    tokens = []
    for i in range(n):
        token, _ = await signed_in(gql, email=f"c{i}@example.com")
        body = await gql(
            UPDATE_PROFILE, {"input": {"email": new, "currentPassword": PASSWORD}}, token=token
        )
        assert body["data"]["updateProfile"]["emailChangePending"] is True
        tokens.append(await verification_token(new))
    assert len(set(tokens)) == n
    # when every link is followed at once
    links = iter(tokens)
    bodies = await fan_in(gql, lambda c: GQL(c)(VERIFY_EMAIL, {"token": next(links)}), n)
    # then one account has the address; every other answer is the typed EMAIL_UNAVAILABLE,
    # none an internal error (on PostgreSQL, the unique address refused the second write)
    for body in bodies:
        assert "errors" not in body, body
    answers = [body["data"]["verifyEmail"] for body in bodies]
    assert Counter(a["__typename"] for a in answers) == {"EmailVerified": 1, "TokenError": n - 1}
    assert {a["code"] for a in answers if a["__typename"] == "TokenError"} == {"EMAIL_UNAVAILABLE"}
    assert await Customer.filter(email=new).count() == 1
    assert await Customer.filter(pending_email=new).count() == n - 1
