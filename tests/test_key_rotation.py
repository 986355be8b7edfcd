"""Secret-key rotation (issue 17, point 6): after CUSTOS_SECRET_KEY changes, links already
mailed keep working while the old key is listed in CUSTOS_PREVIOUS_SECRET_KEYS; a link
signed with a key not in the list is refused and changes nothing; everything new is
signed with the new key only. Production refuses weak previous keys."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from tortoise.transactions import in_transaction

from api.app import create_app
from api.clock import FakeClock
from api.marketing.unsubscribe_tokens import (
    InvalidUnsubscribeToken,
    read_unsubscribe_token,
    unsubscribe_token,
)
from api.rights.export import build_export, issue_download
from api.security.secret_keys import SigningKey, verifying_keys
from api.services import Services, build_services
from api.settings import Settings
from models import AuditEvent, ConsentRecord, Customer, RightsRequest
from tests.conftest import (
    CLIENT_IP,
    GQL,
    TEST_SECRET,
    register,
    stored_customer,
    verification_token,
)
from tests.test_email import EMAIL
from tests.test_rights_requests import VERIFY, last_code
from tests.test_rights_requests import customer as rights_customer
from tests.test_rights_requests import submit as rights_submit

NEW_KEY = secrets.token_urlsafe(48)
UNRELATED_KEY = secrets.token_urlsafe(48)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@asynccontextmanager
async def server(settings: Settings, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a process started with `settings` (the same database)."""
    built = build_services(settings, clock=clock)
    await built.load_authorizer()
    app = create_app(settings, services=built, manage_db=False)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            yield c
    finally:
        built.close()


def rotated(settings: Settings, *previous: str) -> Settings:
    """The settings after the rotation: NEW_KEY signs, `previous` only verify."""
    return settings.model_copy(
        update={
            "secret_key": SecretStr(NEW_KEY),
            "previous_secret_keys": tuple(SecretStr(k) for k in previous),
        }
    )


async def marketing_customer(gql: GQL) -> Customer:
    await register(gql, consents=[{"purpose": "marketing.email", "granted": True}])
    gql.client.cookies.clear()
    return await Customer.get()


def link(secret: str, customer: Customer, clock: FakeClock) -> str:
    """The token of the unsubscribe link in a marketing mail signed with `secret`."""
    return unsubscribe_token(
        secret=secret, customer_id=customer.id, purpose="marketing.email", issued_at=clock.now()
    )


async def withdrawals() -> list[tuple[str, bool, str]]:
    rows = await ConsentRecord.filter(purpose="marketing.email").order_by("id")
    return [(r.purpose, r.granted, r.source) for r in rows]


# --- unsubscribe links ---------------------------------------------------------------------


async def test_a_link_mailed_before_the_rotation_still_unsubscribes(
    gql: GQL, settings: Settings, clock: FakeClock
) -> None:
    # given a marketing mail sent under the old key
    customer = await marketing_customer(gql)
    token = link(TEST_SECRET, customer, clock)
    # when the key is rotated, the old one kept for verifying, and the link is clicked
    async with server(rotated(settings, TEST_SECRET), clock) as client:
        response = await client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
    # then the customer is unsubscribed at once
    assert response.status_code == 200
    assert (await withdrawals())[-1] == ("marketing.email", False, "unsubscribe_link")


@pytest.mark.parametrize(
    "previous", [pytest.param((), id="no-previous"), pytest.param((UNRELATED_KEY,), id="other")]
)
async def test_a_link_of_a_key_not_listed_is_refused_and_changes_nothing(
    gql: GQL, settings: Settings, clock: FakeClock, previous: tuple[str, ...]
) -> None:
    # given a marketing mail sent under the old key
    customer = await marketing_customer(gql)
    token = link(TEST_SECRET, customer, clock)
    before = await withdrawals()
    # when the key is rotated without keeping the old one, and the link is clicked
    async with server(rotated(settings, *previous), clock) as client:
        response = await client.post(f"/unsubscribe/{token}", data=ONE_CLICK)
        mutation = await client.post(
            "/graphql",
            json={
                "query": "mutation ($t: String!) { unsubscribe(token: $t) {"
                " __typename ... on TokenError { code } } }",
                "variables": {"t": token},
            },
        )
    # then it is refused (logged as tampered), and nothing changed
    assert response.status_code == 400
    assert mutation.json()["data"]["unsubscribe"] == {
        "__typename": "TokenError",
        "code": "INVALID_TOKEN",
    }
    assert await withdrawals() == before
    # and each refusal is logged, naming no customer (the signature vouched for nobody)
    refusals = await AuditEvent.filter(operation="unsubscribe", decision="deny").values(
        "reason", "subject_id"
    )
    assert refusals == [{"reason": "TAMPERED", "subject_id": ""}] * 2


async def test_new_links_are_signed_with_the_new_key_only(
    settings: Settings, clock: FakeClock
) -> None:
    # given the services of a process after the rotation
    services = build_services(rotated(settings, TEST_SECRET), clock=clock)
    try:
        customer = await stored_customer(at=clock.now())
        # when a new link is made (as a campaign makes it, with services.secret)
        token = link(services.secret, customer, clock)
    finally:
        services.close()
    read: Callable[[str], Any] = lambda key: read_unsubscribe_token(  # noqa: E731
        secret=key, token=token, now=clock.now(), max_age_days=400
    )
    # then the new key alone verifies it, and the old key does not
    assert read(NEW_KEY) == (customer.id, "marketing.email")
    with pytest.raises(InvalidUnsubscribeToken) as refused:
        read(TEST_SECRET)
    assert refused.value.code == "TAMPERED"


def test_the_signing_key_is_the_current_key_and_carries_the_previous_ones(
    settings: Settings,
) -> None:
    key = Services.secret.fget(build_services(rotated(settings, TEST_SECRET)))  # type: ignore[attr-defined]
    assert isinstance(key, SigningKey)
    assert key == NEW_KEY
    assert verifying_keys(key) == (NEW_KEY, TEST_SECRET)
    assert verifying_keys(NEW_KEY) == (NEW_KEY,)
    # a key never shows in a repr (a traceback's locals, a log line)
    assert NEW_KEY not in repr(key)
    assert TEST_SECRET not in repr(key)


# --- export download links -----------------------------------------------------------------


async def test_an_export_link_issued_before_the_rotation_still_downloads(
    services: Services, settings: Settings, clock: FakeClock
) -> None:
    # given an export link issued under the old key
    customer = await stored_customer(at=clock.now())
    request = await RightsRequest.create(
        customer=customer,
        kind="access",
        status="approved",
        channel="account",
        submitted_at=clock.now(),
    )
    document = await build_export(customer_id=customer.id, include=lambda _: True, now=clock.now())
    async with in_transaction() as conn:
        token = await issue_download(
            services=services,
            request_id=request.id,
            customer_id=customer.id,
            document=document,
            using_db=conn,
        )
    # when the key is rotated (the link is a random token stored hashed, without the key)
    async with server(rotated(settings), clock) as client:
        response = await client.post(f"/exports/{token}")
    # then it still downloads the document
    assert response.status_code == 200
    assert response.json() == document


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["changeme", "x" * 40, "abcd" * 12, secrets.token_hex(8)], ids=str)
def test_production_refuses_a_weak_previous_key(tmp_path: Any, weak: str) -> None:
    policy = tmp_path / "policy.txt"
    policy.write_text("Our policy.", "utf-8")
    live: dict[str, Any] = {
        "env": "production",
        "secret_key": SecretStr(NEW_KEY),
        "public_url": "https://shop.example",
        "policy_file": policy,
        "controller_name": "Shop Ltd",
        "controller_contact": "privacy@shop.example",
        "dpo_contact": "dpo@shop.example",
    }
    with pytest.raises(ValidationError, match=r"CUSTOS_PREVIOUS_SECRET_KEYS\[1\]"):
        Settings(**live, previous_secret_keys=(SecretStr(TEST_SECRET + "Zq9"), SecretStr(weak)))
    accepted = Settings(**live, previous_secret_keys=(SecretStr(UNRELATED_KEY),))
    assert accepted.previous_secret_keys[0].get_secret_value() == UNRELATED_KEY


def test_previous_keys_are_a_json_list_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUSTOS_PREVIOUS_SECRET_KEYS", f'["{TEST_SECRET}", "{UNRELATED_KEY}"]')
    settings = Settings()
    assert [k.get_secret_value() for k in settings.previous_secret_keys] == [
        TEST_SECRET,
        UNRELATED_KEY,
    ]
    assert TEST_SECRET not in repr(settings)


# --- verification links and rights-request codes ------------------------------------------

VERIFY_EMAIL_OPERATION = (
    "mutation ($t: String!) { verifyEmail(token: $t) { __typename ... on TokenError { code } } }"
)


@pytest.mark.parametrize(
    ("previous", "verified"),
    [pytest.param((TEST_SECRET,), True, id="old-key-kept"), pytest.param((), False, id="dropped")],
)
async def test_a_verification_link_mailed_before_the_rotation(
    gql: GQL, settings: Settings, clock: FakeClock, previous: tuple[str, ...], verified: bool
) -> None:
    # given a customer whose verification mail went out under the old key
    await register(gql)
    gql.client.cookies.clear()
    token = await verification_token(EMAIL)
    # when the key is rotated and the link is followed
    async with server(rotated(settings, *previous), clock) as client:
        response = await client.post(
            "/graphql", json={"query": VERIFY_EMAIL_OPERATION, "variables": {"t": token}}
        )
    # then it verifies while the old key is listed, and is refused (nothing changed) once not
    answer = response.json()["data"]["verifyEmail"]
    customer = await Customer.get(email=EMAIL)
    if verified:
        assert answer == {"__typename": "EmailVerified"}
        assert customer.email_verified_at is not None
    else:
        assert answer == {"__typename": "TokenError", "code": "INVALID_TOKEN"}
        assert customer.email_verified_at is None


async def test_a_rights_code_mailed_before_the_rotation_still_confirms_the_request(
    gql: GQL, settings: Settings, clock: FakeClock
) -> None:
    # given a rights request whose code was mailed under the old key
    token, customer = await rights_customer(gql)
    receipt = await rights_submit(gql, token)
    request_id, code = await last_code(customer.email)
    assert request_id == receipt["id"]
    # when the key is rotated (the old one kept for verifying) and the code is entered
    async with server(rotated(settings, TEST_SECRET), clock) as client:
        response = await client.post(
            "/graphql",
            json={"query": VERIFY, "variables": {"id": request_id, "code": code}},
            headers={"Authorization": f"Bearer {token}"},
        )
    # then the request is confirmed
    confirmed = response.json()["data"]["verifyRightsRequest"]
    assert confirmed["__typename"] == "RightsRequestReceipt"
    assert (await RightsRequest.get(id=request_id)).status == confirmed["status"].lower()
