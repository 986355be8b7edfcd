"""A pending change of the email address stops when the customer cancels it or changes the
password (api/customers/pending_email.py): its confirmation link then moves nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from api.services import Services
from models import AuditEvent, Customer, EmailToken
from tests.conftest import (
    GQL,
    ME,
    PASSWORD,
    VERIFY_EMAIL,
    login,
    mails,
    register,
    signed_in_employee,
    verification_token,
)
from tests.test_password_reset import ask, reset, reset_token
from tests.test_profile import EMAIL, NEW_EMAIL, state, update

CANCEL = "mutation { cancelEmailChange { cancelled } }"
CHANGE_PASSWORD = """
mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) {
  __typename ... on PasswordChanged { otherSessionsRevoked } } }
"""
ATTACKER = "mallory@example.net"
NEW_PASSWORD = "a brand new passphrase"


async def with_pending_change(gql: GQL, address: str = NEW_EMAIL) -> tuple[str, str]:
    """Jane signed in, a change of her address to `address` asked with her password: (her
    session token, the confirmation token mailed to `address`)."""
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    session = await login(gql)
    body = await update(gql, session, email=address, currentPassword=PASSWORD)
    assert body["data"]["updateProfile"]["emailChangePending"] is True
    return session, await verification_token(address)


async def confirm(gql: GQL, token: str) -> dict[str, Any]:
    """What opening a confirmation link answers: the account's address, or the error code."""
    result: dict[str, Any] = (await gql(VERIFY_EMAIL, {"token": token}))["data"]["verifyEmail"]
    if result["__typename"] == "TokenError":
        return {"code": result["code"]}
    return {"email": result["customer"]["email"]}


async def account() -> tuple[str, str | None]:
    customer = await Customer.get()
    return customer.email, customer.pending_email


async def test_a_cancelled_change_moves_nothing(gql: GQL) -> None:
    # given a pending change to a mistyped address
    session, link = await with_pending_change(gql)
    # when Jane cancels it
    body = await gql(CANCEL, token=session)
    # then it was pending, is gone, and its link no longer works
    assert body == {"data": {"cancelEmailChange": {"cancelled": True}}}
    assert (await gql(ME, token=session))["data"]["me"]["pendingEmail"] is None
    assert await confirm(gql, link) == {"code": "INVALID_TOKEN"}
    assert await account() == (EMAIL, None)
    # and the link's token is spent, not just refused
    [spent] = await EmailToken.filter(used_at__isnull=False)
    assert spent.id == max(t.id for t in await EmailToken.all())


async def test_cancelling_with_nothing_pending_changes_nothing(gql: GQL) -> None:
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    session = await login(gql)
    before = await state()
    body = await gql(CANCEL, token=session)
    assert body == {"data": {"cancelEmailChange": {"cancelled": False}}}
    assert await state() == before


async def test_ten_identical_cancels_at_once_have_one_effect(gql: GQL) -> None:
    session, link = await with_pending_change(gql)
    bodies = await asyncio.gather(*(gql(CANCEL, token=session) for _ in range(10)))
    answers = sorted(b["data"]["cancelEmailChange"]["cancelled"] for b in bodies)
    assert answers == [False] * 9 + [True]
    assert await account() == (EMAIL, None)
    assert await confirm(gql, link) == {"code": "INVALID_TOKEN"}


async def test_a_password_change_cuts_off_a_change_asked_with_the_old_password(
    gql: GQL,
) -> None:
    # given someone who knows Jane's password and asked to move her account to their address
    session, link = await with_pending_change(gql, ATTACKER)
    # and the notice the current address got, which says to change the password
    [notice] = await mails("email_change_notice")
    assert "change your password" in notice.body_text
    # when Jane changes her password
    body = await gql(CHANGE_PASSWORD, {"c": PASSWORD, "n": NEW_PASSWORD}, token=session)
    assert body["data"]["changePassword"]["__typename"] == "PasswordChanged"
    # then the link mailed to the other address no longer moves the account
    assert await confirm(gql, link) == {"code": "INVALID_TOKEN"}
    assert await account() == (EMAIL, None)
    assert (await gql(ME, token=session))["data"]["me"]["pendingEmail"] is None


async def test_a_password_reset_cuts_off_a_pending_change(gql: GQL) -> None:
    # given a change to someone else's address, asked with Jane's password
    _, link = await with_pending_change(gql, ATTACKER)
    # when Jane resets her password from the mailed link
    await ask(gql)
    assert (await reset(gql, await reset_token()))["__typename"] == "PasswordReset"
    # then the change's link moves nothing
    assert await confirm(gql, link) == {"code": "INVALID_TOKEN"}
    assert await account() == (EMAIL, None)


async def test_only_the_pending_address_loses_its_link(gql: GQL) -> None:
    # given Jane, unverified, who asked to move to a new address
    session, change_link = await with_pending_change(gql)
    registration_link = await verification_token(EMAIL)
    # when she changes her password
    body = await gql(CHANGE_PASSWORD, {"c": PASSWORD, "n": NEW_PASSWORD}, token=session)
    assert body["data"]["changePassword"]["__typename"] == "PasswordChanged"
    # then her registration link still confirms her current address
    assert await confirm(gql, registration_link) == {"email": EMAIL}
    assert await confirm(gql, change_link) == {"code": "INVALID_TOKEN"}
    # and a change asked afterwards, with the new password, works as before
    body = await update(gql, session, email=NEW_EMAIL, currentPassword=NEW_PASSWORD)
    assert body["data"]["updateProfile"]["emailChangePending"] is True
    assert await confirm(gql, await verification_token(NEW_EMAIL)) == {"email": NEW_EMAIL}


async def test_only_a_signed_in_customer_cancels(gql: GQL, services: Services) -> None:
    # given Jane's pending change
    _, link = await with_pending_change(gql)
    staff, _ = await signed_in_employee(gql, services, "customer_care")
    gql.client.cookies.clear()
    before = await state()
    logged = max([0, *await AuditEvent.all().values_list("id", flat=True)])
    # when an anonymous caller and an employee ask to cancel it
    anonymous = await gql(CANCEL)
    employee = await gql(CANCEL, token=staff)
    # then both are refused, typed, and nothing changed
    assert anonymous["data"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert employee["data"] is None
    assert employee["errors"][0]["extensions"] == {"code": "FORBIDDEN", "reason": "ROLE_REQUIRED"}
    assert await state() == before
    assert await account() == (EMAIL, NEW_EMAIL)
    # and the employee's refusal is in the decision log
    refused = await AuditEvent.filter(id__gt=logged, decision="deny")
    assert [(r.actor_kind, r.operation, r.reason) for r in refused] == [
        ("employee", "cancelEmailChange", "requires a customer")
    ]
    # and the change's link still works
    assert await confirm(gql, link) == {"email": NEW_EMAIL}


async def test_a_cancel_racing_the_confirmation_has_one_outcome(gql: GQL) -> None:
    # given Jane, who asks to move her account ten times in turn
    session, _ = await with_pending_change(gql)
    assert (await gql(CANCEL, token=session))["data"]["cancelEmailChange"]["cancelled"]
    current = EMAIL
    for n in range(10):
        address = f"jane.{n}@example.org"
        body = await update(gql, session, email=address, currentPassword=PASSWORD)
        assert body["data"]["updateProfile"]["emailChangePending"] is True
        link = await verification_token(address)
        # when the link is opened as she cancels the change
        cancelled, confirmed = await asyncio.gather(gql(CANCEL, token=session), confirm(gql, link))
        # then exactly one of the two took effect, and the account says which
        if cancelled["data"]["cancelEmailChange"]["cancelled"]:
            assert confirmed == {"code": "INVALID_TOKEN"}
        else:
            assert confirmed == {"email": address}
            current = address
        assert await account() == (current, None)
