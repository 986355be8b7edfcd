"""No side channel tells who is a customer: for every operation that takes an address or an
id of someone the caller may not see, "exists but not yours to see" answers exactly like
"does not exist" (content, errors, cursors, counts), and the anonymous operations that take
an address do the same SQL for a known and an unknown one (the statements are compared,
not timed: bench/oracle.py times them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.customers import service as customer_service
from api.services import Services
from models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    DeferredIntake,
    EmailToken,
    OutboxMessage,
    RightsRequest,
    SupportCase,
)
from tests.conftest import (
    GQL,
    REGISTER,
    login,
    mails,
    register,
    registration,
    signed_in_employee,
    stored_customer,
)
from tests.intake_helpers import run_intake

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SEARCH = """
query($purpose: Purpose!, $first: Int!, $after: String, $search: String) {
  customers(purpose: $purpose, first: $first, after: $after, search: $search) {
    edges { cursor node { id email phone } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
BY_EMAIL = """
mutation ($email: String!) {
  submitRightsRequestByEmail(email: $email, kind: ACCESS, details: "all of it") {
    __typename ... on RightsError { code message } } }
"""
SUBMIT = "mutation { submitRightsRequest(kind: ACCESS) { ... on RightsRequestReceipt { id } } }"
VERIFY = """
mutation ($id: ID!) { verifyRightsRequest(id: $id, code: "123456") {
  __typename ... on RightsError { code message } } }
"""
RESEND = "mutation ($id: ID!) { resendRightsRequestCode(id: $id) { code message } }"


@contextmanager
def statements(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The SQL statements run inside the block, as templates (values left out)."""
    caplog.clear()
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        yield seen
    for record in caplog.records:
        if record.name == "tortoise.db_client":
            seen.append(str(record.args[0]) if record.args else str(record.msg))


async def employee(gql: GQL, services: Services, role: str) -> str:
    token, _ = await signed_in_employee(gql, services, role, name=f"{role}-{uuid4().hex[:6]}")
    gql.client.cookies.clear()
    return token


async def logged_searches() -> list[tuple[str, str, str, str]]:
    """Every row a search left, as (event, decision, subject, reason)."""
    rows = AuditEvent.exclude(event="auth").order_by("id")
    return [tuple(r) for r in await rows.values_list("event", "decision", "subject_id", "reason")]


# -- staff: customers(search:) -------------------------------------------------------------

HIDDEN_TO = [
    ("customer_care", "SUPPORT"),  # no open case
    ("marketing", "MARKETING_EMAIL"),  # no consent
    ("auditor", "LEGAL"),
    ("admin", "SERVICE"),
    ("privacy_officer", "LEGAL"),  # no running request
]


@pytest.mark.parametrize(("role", "purpose"), HIDDEN_TO)
@pytest.mark.parametrize("by", ["email", "phone"])
async def test_a_search_answers_a_hidden_customer_like_a_missing_one(
    gql: GQL, services: Services, role: str, purpose: str, by: str
) -> None:
    # given a customer the employee may not read, and an address nobody has
    hidden = await stored_customer(1, at=T0)
    before = await Customer.filter(id=hidden.id).values()
    token = await employee(gql, services, role)
    terms = {
        "email": ("jane1@example.com", "nobody@example.com"),
        "phone": (hidden.phone, "+442079469999"),
    }
    known, unknown = terms[by]

    async def search(value: str) -> dict[str, Any]:
        variables = {"purpose": purpose, "first": 5, "search": value}
        return await gql(SEARCH, variables, token=token)

    # when the employee searches for both
    found = await search(known)
    found_logged = await logged_searches()
    missing = await search(unknown)
    # then the two answers are identical: no edge, no cursor, no next page, no error
    assert found == missing
    assert found == {
        "data": {"customers": {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}
    }
    # and so are their log rows (one denied search each), which never name the customer,
    # so an auditor reading the log learns no more than the answer said; nothing changed
    category = "contact.email" if by == "email" else "contact.phone"
    assert found_logged == [("search", "deny", "", f"{category}: 0 shown")]
    assert await logged_searches() == found_logged * 2
    assert await AuditEvent.filter(subject_id=str(hidden.id)).count() == 0
    assert await Customer.filter(id=hidden.id).values() == before


async def test_a_search_pages_over_what_the_employee_may_see(gql: GQL, services: Services) -> None:
    # given three customers sharing one phone number, only two with an open case
    shared = "+442079460100"
    people = sorted([await stored_customer(n, at=T0) for n in range(3)], key=lambda p: p.id)
    await Customer.filter(id__in=[p.id for p in people]).update(phone=shared)
    first, hidden, last = people
    seen = [first, last]
    for person in seen:
        await SupportCase.create(customer=person, subject="Ring", message="?", created_at=T0)
    token = await employee(gql, services, "customer_care")

    async def pages() -> list[dict[str, Any]]:
        answers, after = [], None
        while True:
            variables = {"purpose": "SUPPORT", "first": 1, "after": after, "search": shared}
            page = (await gql(SEARCH, variables, token=token))["data"]["customers"]
            answers.append(page)
            if not page["pageInfo"]["hasNextPage"]:
                return answers
            after = page["pageInfo"]["endCursor"]

    # when care pages through the matches one at a time
    with_hidden = await pages()
    # then it sees the two it may read, one a page, each page ending at its own edge
    assert [[e["node"]["id"] for e in p["edges"]] for p in with_hidden] == [
        [str(seen[0].id)],
        [str(seen[1].id)],
    ]
    assert [p["edges"][-1]["cursor"] for p in with_hidden] == [
        p["pageInfo"]["endCursor"] for p in with_hidden
    ]
    # and exactly the pages it would see if the hidden customer did not exist
    await hidden.delete()
    assert await pages() == with_hidden


async def test_a_listed_id_is_no_secret_to_the_employee(gql: GQL, services: Services) -> None:
    """`customer(id:)` differs for a known and an unknown id, legitimately: every employee
    lists every customer's id (`customers` without a search), so an id tells them nothing
    they may not see. Should the listing ever hide ids, this test fails, and the id read
    must then answer hidden ids like unknown ones."""
    hidden = await stored_customer(1, at=T0)
    token = await employee(gql, services, "marketing")
    listing = await gql(SEARCH, {"purpose": "MARKETING_EMAIL", "first": 5}, token=token)
    assert [e["node"]["id"] for e in listing["data"]["customers"]["edges"]] == [str(hidden.id)]
    read = "query($id: ID!) { customer(id: $id, purpose: MARKETING_EMAIL) { id email } }"
    unknown = await gql(read, {"id": str(uuid4())}, token=token)
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# -- rights requests by id: someone else's is an unknown one ---------------------------------


async def someone_elses_request(gql: GQL) -> tuple[str, str]:
    """(Mallory's token, the id of Jane's unverified request)."""
    await register(gql)
    jane = await login(gql)
    request_id = (await gql(SUBMIT, token=jane))["data"]["submitRightsRequest"]["id"]
    await register(gql, email="mallory@example.com")
    mallory = await login(gql, "mallory@example.com")
    gql.client.cookies.clear()
    return mallory, request_id


@pytest.mark.parametrize(("operation", "query"), [("verify", VERIFY), ("resend_code", RESEND)])
async def test_someone_elses_request_id_is_an_unknown_one(
    gql: GQL, caplog: pytest.LogCaptureFixture, operation: str, query: str
) -> None:
    # given Mallory, signed in, and Jane's unverified request
    mallory, theirs = await someone_elses_request(gql)
    before = await RightsRequest.get(id=theirs)
    codes = len(await mails("rights_code"))
    # when Mallory uses Jane's id, then an id nobody has
    with statements(caplog) as foreign:
        on_theirs = await gql(query, {"id": theirs}, token=mallory)
    with statements(caplog) as unknown:
        on_nothing = await gql(query, {"id": str(uuid4())}, token=mallory)
    # then the answers and the SQL are the same, nothing changed, no code went out
    assert on_theirs == on_nothing
    assert foreign == unknown
    after = await RightsRequest.get(id=theirs)
    assert (after.status, after.code_attempts, after.code_digest) == (
        before.status,
        before.code_attempts,
        before.code_digest,
    )
    assert len(await mails("rights_code")) == codes
    # and both refusals are logged
    refused = await AuditEvent.filter(event="rights", operation=operation, decision="deny")
    assert len(refused) == 2


# -- anonymous operations that take an address ------------------------------------------------


async def test_by_email_does_the_same_work_for_known_and_unknown_addresses(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given an account, and an address without one
    await register(gql)
    await gql(BY_EMAIL, {"email": "warm-up@example.com"})  # first-use work out of the way
    await run_intake(services)

    async def submit(email: str) -> tuple[dict[str, Any], list[str]]:
        with statements(caplog) as seen:
            body = await gql(BY_EMAIL, {"email": email})
        return body, seen

    # when someone submits a request by email for each
    known, known_sql = await submit("Jane.Doe@example.com")
    unknown, unknown_sql = await submit("nobody@example.com")
    # then the answers and the statements are the same: one queued row each
    assert known == unknown
    assert known_sql == unknown_sql
    assert sorted(await DeferredIntake.all().values_list("address", flat=True)) == [
        "jane.doe@example.com",
        "nobody@example.com",
    ]
    assert await RightsRequest.all().count() == 0
    assert await mails("rights_code") == []
    # when the worker runs once, after the answers
    assert await run_intake(services) == 2
    # then the account holder got their code, the unknown address nothing, and no row is left
    assert [m.recipient for m in await mails("rights_code")] == ["jane.doe@example.com"]
    assert await RightsRequest.filter(channel="email").count() == 1
    assert await DeferredIntake.all().count() == 0


async def test_registering_a_known_address_does_the_same_writes(
    gql: GQL, caplog: pytest.LogCaptureFixture
) -> None:
    # given an account (registered first, which also warms every cache)
    consents = [{"purpose": "marketing.email", "granted": True}]
    await register(gql, email="first@example.com", consents=consents)
    first = await Customer.get(email="first@example.com")

    async def attempt(email: str) -> tuple[dict[str, Any], list[str]]:
        with statements(caplog) as seen:
            body = await gql(REGISTER, {"input": registration(email=email, consents=consents)})
        return body, seen

    # when someone registers a new address, then the taken one
    new, new_sql = await attempt("second@example.com")
    taken, taken_sql = await attempt("First@example.com")
    # then both answers and both sequences of statements are the same
    assert new == taken
    assert new_sql == taken_sql
    assert any(s.startswith('INSERT INTO "customer"') for s in taken_sql), taken_sql
    # and only the new address got an account; the owner of the taken one is told by mail
    assert sorted(await Customer.all().values_list("email", flat=True)) == [
        "first@example.com",
        "second@example.com",
    ]
    assert await ConsentRecord.all().count() == 2
    assert await EmailToken.filter(customer_id=first.id).count() == 1
    [notice] = await mails("already_registered")
    assert (notice.recipient, notice.customer_id) == ("first@example.com", first.id)
    assert not await OutboxMessage.filter(recipient__endswith=".invalid").exists()


async def test_an_address_taken_between_the_check_and_the_insert(
    gql: GQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a check that finds no account, twice (as two requests at the same moment would)
    real, checks = customer_service._owner_of, []

    async def late(address: str, conn: Any) -> UUID | None:
        checks.append(address)
        return None if len(checks) <= 2 else await real(address, conn)

    monkeypatch.setattr(customer_service, "_owner_of", late)
    # when the address is registered by both
    first, second = await register(gql), await register(gql)
    # then the unique index decides: the same answer, one account, its owner told of the other
    assert first == second
    assert await Customer.all().count() == 1
    assert len(await mails("verify_email")) == 1
    [notice] = await mails("already_registered")
    assert notice.customer_id == (await Customer.get()).id


async def test_changing_to_a_taken_address_does_the_same_writes(
    gql: GQL, caplog: pytest.LogCaptureFixture
) -> None:
    # given Jane, signed in, and another customer's address
    await register(gql, email="taken@example.com")
    await register(gql)
    jane = await login(gql)
    gql.client.cookies.clear()
    change = (
        "mutation ($email: String!) { updateProfile(input: "
        '{ email: $email, currentPassword: "correct horse battery staple" }) '
        "{ __typename ... on ProfileUpdated { emailChangePending } } }"
    )

    async def attempt(email: str) -> tuple[dict[str, Any], list[str]]:
        with statements(caplog) as seen:
            body = await gql(change, {"email": email}, token=jane)
        return body, seen

    # when she asks to change her address to a free one, then to the taken one
    free, free_sql = await attempt("jane.free@example.com")
    taken, taken_sql = await attempt("taken@example.com")
    # then the answers and the statements are the same (a void token stands in for the
    # one the taken address must not get)
    assert (
        free
        == taken
        == {"data": {"updateProfile": {"__typename": "ProfileUpdated", "emailChangePending": True}}}
    )
    assert free_sql == taken_sql
    # and only the free address was mailed a link; the taken one was told of the attempt
    assert [m.kind for m in await mails(recipient="taken@example.com")] == [
        "verify_email",
        "email_change_collision",
    ]
    assert [m.kind for m in await mails(recipient="jane.free@example.com")] == ["verify_email"]
