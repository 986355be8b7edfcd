"""The customer's own profile: reading it, correcting it, moving it to a new address."""

from __future__ import annotations

from typing import Any

import pytest

from models import AuditEvent, Customer, EmailToken, OutboxMessage
from tests.conftest import (
    GQL,
    LOGIN,
    ME,
    PASSWORD,
    VERIFY_EMAIL,
    login,
    mails,
    register,
    verification_token,
)

EMAIL = "jane.doe@example.com"
NEW_EMAIL = "jane.new@example.org"

UPDATE_PROFILE = """
mutation Update($input: UpdateProfileInput!) {
  updateProfile(input: $input) {
    __typename
    ... on ProfileUpdated {
      emailChangePending
      customer {
        email emailVerified pendingEmail phone
        address { line1 line2 city postalCode country }
      }
    }
    ... on InputError { code field message fields { field code message } }
    ... on InvalidCredentials { code message }
  }
}
"""

PARIS = {
    "line1": "10 Rue de Rivoli",
    "line2": "Bâtiment B",
    "city": "Paris",
    "postalCode": "75001",
    "country": "fr",
}


async def signed_in(gql: GQL, **overrides: Any) -> str:
    assert (await register(gql, **overrides))["__typename"] == "RegistrationAccepted"
    return await login(gql, overrides.get("email", EMAIL))


async def update(gql: GQL, token: str | None, **changes: Any) -> dict[str, Any]:
    return await gql(UPDATE_PROFILE, {"input": changes}, token=token)


async def state() -> list[tuple[Any, ...]]:
    """Every customer, token and mail as stored: to show that a refusal wrote nothing."""
    customers = await Customer.all().order_by("email").values_list()
    tokens = await EmailToken.all().order_by("id").values_list()
    outbox = await OutboxMessage.all().order_by("id").values_list()
    return [*customers, *tokens, *outbox]


async def test_me_returns_the_registered_data(gql: GQL) -> None:
    # given a customer who consented to marketing email only
    token = await signed_in(gql, consents=[{"purpose": "marketing.email", "granted": True}])
    # when they ask for their own data
    body = await gql(ME, token=token)
    # then it is what they registered, normalised, with every consent purpose listed
    me = body["data"]["me"]
    assert me["id"] == str((await Customer.get()).id)
    assert (me["email"], me["emailVerified"], me["pendingEmail"]) == (EMAIL, False, None)
    assert me["phone"] == "+442079460958"
    assert me["address"] == {
        "line1": "221B Baker Street",
        "line2": None,
        "city": "London",
        "postalCode": "NW1 6XE",
        "country": "GB",
    }
    assert [(c["purpose"], c["granted"], c["source"]) for c in me["consents"]] == [
        ("analytics", False, None),
        ("marketing.ads", False, None),
        ("marketing.email", True, "registration"),
        ("personalization", False, None),
    ]


async def test_update_phone_and_address(gql: GQL) -> None:
    # given a customer in London
    token = await signed_in(gql)
    # when they move to Paris and give a French number written locally
    body = await update(gql, token, phone="06 12 34 56 78", address=PARIS)
    # then the number is read in the new address's country and both are stored
    result = body["data"]["updateProfile"]
    assert result["__typename"] == "ProfileUpdated"
    assert result["emailChangePending"] is False
    paris = {**PARIS, "country": "FR"}
    assert (result["customer"]["phone"], result["customer"]["address"]) == ("+33612345678", paris)
    me = (await gql(ME, token=token))["data"]["me"]
    assert (me["email"], me["phone"], me["address"]) == (EMAIL, "+33612345678", paris)
    customer = await Customer.get()
    assert (customer.phone, customer.address_city, customer.address_country) == (
        "+33612345678",
        "Paris",
        "FR",
    )
    # and a later local number is read in the stored country
    body = await update(gql, token, phone="01 42 68 53 00")
    assert body["data"]["updateProfile"]["customer"]["phone"] == "+33142685300"
    assert (await Customer.get()).phone == "+33142685300"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": "+44 20 7946"}, "phone"),
        ({"phone": "+33 6 12 34 56 78", "address": {**PARIS, "country": "XX"}}, "address.country"),
        ({"address": {**PARIS, "postalCode": None}}, "address.postalCode"),
        (
            {"phone": "+33612345678", "address": {**PARIS, "postalCode": "75<01"}},
            "address.postalCode",
        ),
        ({"address": {**PARIS, "line1": " "}}, "address.line1"),
    ],
)
async def test_malformed_update_names_the_field_and_changes_nothing(
    gql: GQL, changes: dict[str, Any], field: str
) -> None:
    # given a customer
    token = await signed_in(gql)
    before = await state()
    # when an update has one bad field (and perhaps good ones)
    body = await update(gql, token, **changes)
    # then the bad field is named and nothing at all is written
    result = body["data"]["updateProfile"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "InputError",
        "VALIDATION",
        field,
    )
    assert [f["field"] for f in result["fields"]] == [field]
    assert await state() == before


async def test_email_change_without_current_password_is_refused(gql: GQL) -> None:
    token = await signed_in(gql)
    before = await state()
    body = await update(gql, token, email=NEW_EMAIL, phone="+33612345678")
    result = body["data"]["updateProfile"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "InputError",
        "VALIDATION",
        "currentPassword",
    )
    assert await state() == before


async def test_email_change_with_wrong_password_is_refused(gql: GQL) -> None:
    # given a customer
    token = await signed_in(gql)
    before = await state()
    # when they change their email with a wrong password
    body = await update(
        gql, token, email=NEW_EMAIL, currentPassword=PASSWORD + "!", phone="+33612345678"
    )
    # then the credentials are refused, nothing changes and no mail goes out
    assert body["data"]["updateProfile"] == {
        "__typename": "InvalidCredentials",
        "code": "INVALID_CREDENTIALS",
        "message": "The email or password is wrong.",
    }
    assert await state() == before
    assert await mails(recipient=NEW_EMAIL) == []
    assert await mails("email_change_notice") == []
    # and the refusal is logged, by the customer, naming no address or password
    assert await refusals("updateProfile") == [("wrong password", str((await Customer.get()).id))]


async def refusals(operation: str) -> list[tuple[str, str]]:
    """The refused password re-confirmations of `operation` in the decision log: (reason,
    actor), each row's actor and subject the customer."""
    rows = await AuditEvent.filter(event="auth", operation=operation, decision="deny")
    assert all(r.actor_kind == "customer" and r.subject_id == r.actor_id for r in rows)
    return [(r.reason, r.actor_id) for r in rows]


async def test_email_change_takes_effect_once_the_new_address_confirms(gql: GQL) -> None:
    # given a customer
    token = await signed_in(gql)
    # when they change their email with their password
    body = await update(gql, token, email=" Jane.New@EXAMPLE.org", currentPassword=PASSWORD)
    # then the change waits for the new address to confirm
    result = body["data"]["updateProfile"]
    assert (result["__typename"], result["emailChangePending"]) == ("ProfileUpdated", True)
    assert (result["customer"]["email"], result["customer"]["pendingEmail"]) == (EMAIL, NEW_EMAIL)
    me = (await gql(ME, token=token))["data"]["me"]
    assert (me["email"], me["pendingEmail"]) == (EMAIL, NEW_EMAIL)
    # and the current address is told, the new one asked to confirm
    [notice] = await mails("email_change_notice")
    assert notice.recipient == EMAIL
    assert [m.kind for m in await mails(recipient=NEW_EMAIL)] == ["verify_email"]
    # when the new address confirms
    verified = await gql(VERIFY_EMAIL, {"token": await verification_token(NEW_EMAIL)})
    # then it is the account's address, verified
    assert verified["data"]["verifyEmail"]["customer"] == {
        "email": NEW_EMAIL,
        "emailVerified": True,
    }
    me = (await gql(ME, token=token))["data"]["me"]
    assert (me["email"], me["emailVerified"], me["pendingEmail"]) == (NEW_EMAIL, True, None)
    # and sign-in works with the new address only
    await login(gql, NEW_EMAIL)
    old = await gql(LOGIN, {"email": EMAIL, "password": PASSWORD})
    assert old["data"]["login"]["__typename"] == "InvalidCredentials"


async def test_email_change_to_a_taken_address_reveals_nothing(gql: GQL) -> None:
    # given two customers
    other = "bob@example.com"
    await signed_in(gql, email=other)
    token = await signed_in(gql)
    # when one changes their email to the other's address
    body = await update(gql, token, email=other, currentPassword=PASSWORD)
    # then the answer is the one of an ordinary change
    result = body["data"]["updateProfile"]
    assert (result["__typename"], result["emailChangePending"]) == ("ProfileUpdated", True)
    assert result["customer"]["email"] == EMAIL
    # and the owner of the address gets a notice, not a token
    assert [m.kind for m in await mails(recipient=other)] == [
        "verify_email",  # bob's own registration
        "email_change_collision",
    ]
    # (the change wrote a token too, but a void one: the same work as a free address)
    assert await EmailToken.filter(used_at__isnull=True).count() == 2
    assert await EmailToken.filter(used_at__isnull=False).count() == 1
    [notice] = await mails("email_change_notice")
    assert notice.recipient == EMAIL
    # and neither account changed its address
    assert sorted(await Customer.all().values_list("email", flat=True)) == [other, EMAIL]
    assert (await Customer.get(email=other)).pending_email is None


async def test_taken_address_shows_as_pending_like_any_other(gql: GQL) -> None:
    # given two customers
    other = "bob@example.com"
    await signed_in(gql, email=other)
    token = await signed_in(gql)
    # when one asks to move to the other's address
    body = await update(gql, token, email=other, currentPassword=PASSWORD)
    # then it looks like any pending change: the requested address awaits confirmation
    me = (await gql(ME, token=token))["data"]["me"]
    assert body["data"]["updateProfile"]["customer"]["pendingEmail"] == other
    assert me["pendingEmail"] == other


async def test_anonymous_update_is_unauthenticated(gql: GQL) -> None:
    await register(gql)
    before = await state()
    body = await update(gql, None, phone="+33612345678")
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["path"] == ["updateProfile"]
    assert await state() == before


async def test_guessing_the_current_password_is_throttled(gql: GQL) -> None:
    # given a signed-in customer (or someone holding their session)
    token = await signed_in(gql)
    before = await state()
    # when the current password is guessed wrong five times
    for i in range(5):
        body = await update(gql, token, email=NEW_EMAIL, currentPassword=f"guess number {i}")
        assert body["data"]["updateProfile"]["code"] == "INVALID_CREDENTIALS"
    # then even the right password waits, and nothing changed
    body = await update(gql, token, email=NEW_EMAIL, currentPassword=PASSWORD)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert await state() == before
    # and every refusal is logged: five wrong guesses, then the throttle
    reasons = [reason for reason, _ in await refusals("updateProfile")]
    assert reasons == ["wrong password"] * 5 + ["rate limited"]


async def test_an_old_token_for_the_current_address_keeps_a_pending_change(gql: GQL) -> None:
    # given an unverified customer who asked to move to a new address
    token = await signed_in(gql)
    registration_token = await verification_token(EMAIL)
    await update(gql, token, email=NEW_EMAIL, currentPassword=PASSWORD)
    change_token = await verification_token(NEW_EMAIL)
    # when the old registration token confirms the current address
    body = await gql(VERIFY_EMAIL, {"token": registration_token})
    assert body["data"]["verifyEmail"]["customer"]["email"] == EMAIL
    # then the pending change is still there and its own token still moves the account
    assert (await gql(ME, token=token))["data"]["me"]["pendingEmail"] == NEW_EMAIL
    body = await gql(VERIFY_EMAIL, {"token": change_token})
    assert body["data"]["verifyEmail"]["customer"]["email"] == NEW_EMAIL
