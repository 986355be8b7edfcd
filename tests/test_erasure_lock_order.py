"""An erasure and the writers of a customer's email tokens take their row locks in one order,
the customer's row first (api/customers/row_lock.py): on PostgreSQL an erasure that has
locked the customer while their confirmation link is opened makes the confirmation wait,
instead of the two waiting for each other until one fails with an internal error."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar
from uuid import uuid4

import pytest
from tortoise.transactions import in_transaction

from api.customers import service as profile
from api.customers.service import RequestMeta
from api.rights.erasure import NO_PASSWORD, erase_customer
from api.security.authn import InvalidCredentials
from api.services import Services
from models import ConsentRecord, Customer, EmailToken, RightsRequest, SupportCase
from tests.conftest import GQL, PASSWORD, login, mails, register, verification_token
from tests.test_collect import SET_CONSENT
from tests.test_email_change_cancel import (
    CANCEL,
    CHANGE_PASSWORD,
    account,
    confirm,
    with_pending_change,
)
from tests.test_profile import NEW_EMAIL, update
from tests.test_support import OPEN_CASE

T = TypeVar("T")

EMAIL = "jane.doe@example.com"
NEW_PASSWORDS = {"c": PASSWORD, "n": "another long passphrase"}
HOLD = 0.5
"""How long the erasure holds the customer's row before it goes on: long enough for the
other request to reach its first row lock."""


async def erasure_request(customer_id: object, services: Services) -> object:
    """An approved erasure request of the customer's, as the privacy officer leaves it."""
    now = services.clock.now()
    request = await RightsRequest.create(
        id=uuid4(),
        kind="erasure",
        status="in_progress",
        customer_id=customer_id,
        channel="account",
        submitted_at=now,
        received_at=now,
        due_at=now + timedelta(days=30),
    )
    return request.id


async def erase(
    services: Services, start: Callable[[], Awaitable[T]] | None = None
) -> asyncio.Task[T] | None:
    """Erase the only customer. With `start`: as an erasure does, the row locked first,
    and while it is held (HOLD seconds) the request `start` makes is started, the erasure
    then going on with the request waiting for, or holding, what it needs; returns the
    request's task."""
    customer = await Customer.get()
    request_id = await erasure_request(customer.id, services)
    outside = contextvars.copy_context()  # the request is not in the erasure's transaction
    other = None
    async with in_transaction() as conn:
        if start is not None:
            await Customer.filter(id=customer.id).using_db(conn).select_for_update().get()
            other = asyncio.get_running_loop().create_task(start(), context=outside)
            await asyncio.wait([other], timeout=HOLD)
        await erase_customer(
            services=services,
            customer_id=customer.id,
            request_id=request_id,  # type: ignore[arg-type]
            now=services.clock.now(),
            using_db=conn,
        )
    return other


async def erase_while(services: Services, start: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
    """`erase` with a request arriving while it holds the customer's row."""
    other = await erase(services, start)
    assert other is not None
    return other


def erased_while_checking(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The customer's erasure writes everything it erases while their request checks a
    password: the window between the request's first read of the account and its writes
    (the erasure runs in the request's own transaction here, as a savepoint, so that it
    lands in that window on SQLite too)."""
    check = services.passwords.verify

    async def erased_first(stored_hash: str, password: str) -> bool:
        await erase(services)
        return await check(stored_hash, password)

    monkeypatch.setattr(services.passwords, "verify", erased_first)


async def erased_row() -> Customer:
    customer = await Customer.get()
    assert customer.password_hash == NO_PASSWORD
    assert customer.email.endswith("@erased.invalid")
    assert not customer.phone
    assert not customer.address_line1
    assert not customer.pending_email
    return customer


async def test_a_link_opened_during_an_erasure_is_refused_and_the_erasure_completes(
    gql: GQL, services: Services
) -> None:
    # given Jane, registered, her confirmation link not yet opened
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    link = await verification_token(EMAIL)
    # when she opens it while her erasure holds her row
    opened = await erase_while(services, lambda: confirm(gql, link))
    # then the link is refused, typed, once the erasure is done, and nothing of her is left
    assert await opened == {"code": "INVALID_TOKEN"}
    customer = await Customer.get()
    assert customer.email != EMAIL
    assert customer.email_verified_at is None
    assert await EmailToken.all().count() == 0


async def test_a_change_dropped_during_an_erasure_waits_for_it(
    gql: GQL, services: Services
) -> None:
    # given Jane with a pending change of her address, and its link
    session, link = await with_pending_change(gql)
    # when she cancels the change while her erasure holds her row
    cancelled = await erase_while(services, lambda: gql(CANCEL, token=session))
    # then the cancel waited and answered without an internal error: her session is gone
    body = await cancelled
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # and the change's link moves nothing
    assert await confirm(gql, link) == {"code": "INVALID_TOKEN"}
    assert await Customer.filter(email=NEW_EMAIL).count() == 0


async def test_a_password_changed_during_an_erasure_waits_for_it(
    gql: GQL, services: Services
) -> None:
    # given Jane with a pending change of her address
    session, _ = await with_pending_change(gql)
    # when she changes her password while her erasure holds her row
    changed = await erase_while(
        services,
        lambda: gql(CHANGE_PASSWORD, NEW_PASSWORDS, token=session),
    )
    # then the change waited for the erasure and was refused, typed (her session is gone)
    body = await changed
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await Customer.filter(email=EMAIL).count() == 0


async def test_a_profile_change_checked_across_an_erasure_puts_nothing_back(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Jane, signed in, with her phone and address on file
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    session = await login(gql)
    assert "errors" not in await update(gql, session, phone="+442079460123")
    # when she changes her address and phone while her erasure commits, in the middle of
    # the password check her change of email address needs
    erased_while_checking(services, monkeypatch)
    body = await update(
        gql, session, email=NEW_EMAIL, currentPassword=PASSWORD, phone="+442079460999"
    )
    # then the change is refused, typed: her session ended with the erasure
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # and nothing of her is back: no address, no phone, no pending change, no link
    await erased_row()
    assert await EmailToken.all().count() == 0
    assert await mails(recipient=EMAIL) == []
    assert await mails(recipient=NEW_EMAIL) == []


async def test_a_password_change_checked_across_an_erasure_writes_nothing(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Jane, signed in
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    session = await login(gql)
    # when her erasure commits while her password change checks her current password
    erased_while_checking(services, monkeypatch)
    body = await gql(CHANGE_PASSWORD, NEW_PASSWORDS, token=session)
    # then it is refused, typed, and the erased account keeps no password and gets no mail
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await erased_row()
    assert await mails(recipient=EMAIL) == []


async def test_writes_arriving_during_an_erasure_add_nothing_about_the_erased(
    gql: GQL, services: Services
) -> None:
    # given Jane, signed in, with no consent given and no support case
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    session = await login(gql)
    records = await ConsentRecord.filter(purpose="marketing.ads").count()
    # when she gives a consent and opens a support case while her erasure holds her row
    consent = {"purpose": "marketing.ads", "granted": True}
    given = await erase_while(services, lambda: gql(SET_CONSENT, consent, token=session))
    case = {"subject": "Where is my ring?", "message": "Order 1234"}
    opened = await asyncio.gather(gql(OPEN_CASE, case, token=session))
    # then both are refused, typed: her session ended with the erasure
    for body in (await given, opened[0]):
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # and no row about her was added after it: no consent record, no case
    assert await ConsentRecord.filter(purpose="marketing.ads").count() == records
    assert await SupportCase.all().count() == 0
    await erased_row()


async def test_an_address_that_becomes_a_change_meanwhile_needs_the_password(
    gql: GQL, services: Services
) -> None:
    # given Jane, whose address is EMAIL, with a wrong password in hand
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    jane = await Customer.get()
    meta = RequestMeta(ip="127.0.0.1", user_agent="test")
    asked = profile.ProfileChanges(EMAIL, "not her password", None, None)
    links = len(await mails("verify_email", EMAIL))  # her registration's
    # when she asks for her own address again (no change, so no password check) while a
    # confirmation moves the account to another address and commits
    outside = contextvars.copy_context()
    async with in_transaction() as conn:
        await Customer.filter(id=jane.id).using_db(conn).select_for_update().get()
        update = asyncio.get_running_loop().create_task(
            profile.update_profile(
                services=services, customer_id=jane.id, changes=asked, meta=meta
            ),
            context=outside,
        )
        await asyncio.wait([update], timeout=HOLD)
        await Customer.filter(id=jane.id).using_db(conn).update(email=NEW_EMAIL)
    # then the request, now a change of address, is refused for want of the password
    with pytest.raises(InvalidCredentials):
        await update
    assert await account() == (NEW_EMAIL, None)
    assert len(await mails("verify_email", EMAIL)) == links
