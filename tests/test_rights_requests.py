"""Rights requests (issue 5): submission by a signed-in customer or by email address,
identity verification by a mailed code, deadlines, the privacy officer's queue, review,
extension, cancellation and rectification; every refusal typed, logged, changing nothing."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from api.clock import FakeClock
from api.rights.rules import add_months
from api.services import Services
from api.settings import Settings
from models import (
    AuditEvent,
    Customer,
    Employee,
    EmployeeRole,
    OutboxMessage,
    RightsRequest,
    RightsTransition,
)
from tests.conftest import GQL, PASSWORD, STAFF_LOGIN, login, mails, register, signed_in_employee
from tests.intake_helpers import run_intake

SUBMIT = """
mutation ($kind: RightsRequestKind!, $details: String!, $changes: RectificationInput) {
  submitRightsRequest(kind: $kind, details: $details, changes: $changes) {
    __typename
    ... on RightsRequestReceipt { id kind status dueAt alreadyOpen }
    ... on RightsError { code message } } }
"""
BY_EMAIL = """
mutation ($email: String!, $kind: RightsRequestKind!) {
  submitRightsRequestByEmail(email: $email, kind: $kind, details: "please") {
    __typename
    ... on RightsRequestByEmailAccepted { message }
    ... on RightsError { code message } } }
"""
VERIFY = """
mutation ($id: ID!, $code: String!) {
  verifyRightsRequest(id: $id, code: $code) {
    __typename
    ... on RightsRequestReceipt { id status dueAt }
    ... on RightsError { code message } } }
"""
RESEND = "mutation ($id: ID!) { resendRightsRequestCode(id: $id) { code } }"
CANCEL = """
mutation ($id: ID!) { cancelRightsRequest(id: $id) {
  __typename ... on RightsRequestReceipt { status } ... on RightsError { code } } }
"""
OFFICER_FIELDS = """
  __typename
  ... on RightsRequest { id status dueAt overdue extended details changes before after outcome
                         transitions { fromStatus toStatus actorKind reason } }
  ... on RightsError { code message }
"""
REVIEW = (
    "mutation ($id: ID!, $decision: ReviewDecision!, $reason: String!) {"
    " reviewRightsRequest(id: $id, decision: $decision, reason: $reason) {" + OFFICER_FIELDS + "} }"
)
EXTEND = (
    "mutation ($id: ID!, $reason: String!, $months: Int!) {"
    " extendRightsRequest(id: $id, reason: $reason, months: $months) {" + OFFICER_FIELDS + "} }"
)
FULFIL = "mutation ($id: ID!) { fulfillRightsRequest(id: $id) {" + OFFICER_FIELDS + "} }"
QUEUE = """
query ($status: RightsRequestStatus, $overdue: Boolean, $first: Int!, $after: String) {
  rightsRequests(status: $status, overdue: $overdue, first: $first, after: $after) {
    edges { node { id kind status overdue details } } pageInfo { hasNextPage endCursor } } }
"""
_CODE = re.compile(r"request: (\S+)\n\s+code: (\d{6})")


async def customer(gql: GQL, email: str = "jane.doe@example.com") -> tuple[str, Customer]:
    await register(gql, email=email)
    token = await login(gql, email)
    gql.client.cookies.clear()
    return token, await Customer.get(email=email)


async def last_code(recipient: str) -> tuple[str, str]:
    [*_, message] = await mails("rights_code", recipient)
    match = _CODE.search(message.body_text)
    assert match, message.body_text
    return match.group(1), match.group(2)


async def submit(gql: GQL, token: str, kind: str = "ACCESS", **extra: Any) -> dict[str, Any]:
    variables = {"kind": kind, "details": "What do you hold about me?", **extra}
    body = await gql(SUBMIT, variables, token=token)
    result: dict[str, Any] = body["data"]["submitRightsRequest"]
    return result


async def received(
    gql: GQL, token: str, email: str = "jane.doe@example.com", kind: str = "ACCESS", **extra: Any
) -> str:
    """A verified (pending) request of `kind`; returns its id."""
    receipt = await submit(gql, token, kind, **extra)
    request_id, code = await last_code(email)
    assert request_id == receipt["id"]
    body = await gql(VERIFY, {"id": request_id, "code": code}, token=token)
    assert body["data"]["verifyRightsRequest"]["status"] == "PENDING", body
    return request_id


async def officer(gql: GQL, services: Services, name: str = "officer") -> str:
    token, _ = await signed_in_employee(gql, services, "privacy_officer", name=name)
    gql.client.cookies.clear()
    return token


async def denials(operation: str) -> list[AuditEvent]:
    return await AuditEvent.filter(event="rights", operation=operation, decision="deny")


def test_one_calendar_month() -> None:
    assert add_months(datetime(2026, 1, 31, 9, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, 9, tzinfo=UTC
    )
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 3) == datetime(2027, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 3, 15, tzinfo=UTC), 1) == datetime(2026, 4, 15, tzinfo=UTC)


async def test_submit_then_verify_starts_the_clock(gql: GQL, clock: FakeClock) -> None:
    # given a signed-in customer
    token, jane = await customer(gql)
    # when they ask for their data
    receipt = await submit(gql, token)
    # then the request waits for its code, which is mailed to the account's address
    assert (receipt["kind"], receipt["status"], receipt["dueAt"]) == ("ACCESS", "UNVERIFIED", None)
    request_id, code = await last_code("jane.doe@example.com")
    stored = await RightsRequest.get(id=request_id)
    assert stored.code_digest is not None
    assert code not in stored.code_digest  # an HMAC, not the code
    # when they enter the code a minute later
    clock.advance(minutes=1)
    body = await gql(VERIFY, {"id": request_id, "code": code}, token=token)
    # then it is received: due one calendar month later, and a receipt is mailed
    result = body["data"]["verifyRightsRequest"]
    assert result["status"] == "PENDING"
    received_at = clock.now()
    assert datetime.fromisoformat(result["dueAt"]) == add_months(received_at, 1)
    assert len(await mails("rights_received", "jane.doe@example.com")) == 1
    steps = await RightsTransition.filter(request_id=request_id).order_by("id")
    assert [(s.from_status, s.to_status, s.actor_kind) for s in steps] == [
        ("", "unverified", "customer"),
        ("unverified", "pending", "customer"),
    ]
    assert all(s.actor_id == str(jane.id) for s in steps)


async def test_wrong_codes_lock_the_request_until_a_new_code(gql: GQL) -> None:
    token, _ = await customer(gql)
    await submit(gql, token)
    request_id, code = await last_code("jane.doe@example.com")
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1, 0):
        body = await gql(VERIFY, {"id": request_id, "code": wrong}, token=token)
        error = body["data"]["verifyRightsRequest"]
        assert (error["code"], f"({left} attempt(s) left)" in error["message"]) == (
            "INVALID_CODE",
            True,
        )
    # the right code no longer helps
    body = await gql(VERIFY, {"id": request_id, "code": code}, token=token)
    assert body["data"]["verifyRightsRequest"]["code"] == "CODE_LOCKED"
    assert (await RightsRequest.get(id=request_id)).status == "unverified"
    assert len(await denials("verify")) == 6
    # a new code works, and the old one is void
    await gql(RESEND, {"id": request_id}, token=token)
    _, fresh = await last_code("jane.doe@example.com")
    if fresh != code:
        body = await gql(VERIFY, {"id": request_id, "code": code}, token=token)
        assert body["data"]["verifyRightsRequest"]["code"] == "INVALID_CODE"
    body = await gql(VERIFY, {"id": request_id, "code": fresh}, token=token)
    assert body["data"]["verifyRightsRequest"]["status"] == "PENDING"


async def test_a_code_expires_after_15_minutes(gql: GQL, clock: FakeClock) -> None:
    token, _ = await customer(gql)
    await submit(gql, token)
    request_id, code = await last_code("jane.doe@example.com")
    clock.advance(minutes=15, seconds=1)
    body = await gql(VERIFY, {"id": request_id, "code": code}, token=token)
    assert body["data"]["verifyRightsRequest"]["code"] == "CODE_EXPIRED"
    assert (await RightsRequest.get(id=request_id)).status == "unverified"


async def test_someone_elses_request_is_out_of_reach(gql: GQL) -> None:
    # given Jane's request and its code (say, read over her shoulder)
    jane_token, _ = await customer(gql)
    await submit(gql, jane_token)
    request_id, code = await last_code("jane.doe@example.com")
    # when Mallory, signed in, tries to verify or cancel it
    mallory_token, mallory = await customer(gql, "mallory@example.com")
    verify = await gql(VERIFY, {"id": request_id, "code": code}, token=mallory_token)
    cancel = await gql(CANCEL, {"id": request_id}, token=mallory_token)
    # then both are refused as if the request did not exist, nothing changes, both logged
    assert verify["data"]["verifyRightsRequest"]["code"] == "INVALID_CODE"
    assert cancel["data"]["cancelRightsRequest"]["code"] == "NOT_FOUND"
    assert (await RightsRequest.get(id=request_id)).status == "unverified"
    logged = await AuditEvent.filter(event="rights", decision="deny", actor_id=str(mallory.id))
    assert sorted(e.operation for e in logged) == ["cancel", "verify"]


async def test_asking_again_while_a_request_is_open_returns_the_open_one(gql: GQL) -> None:
    token, jane = await customer(gql)
    first = await submit(gql, token)
    assert first["alreadyOpen"] is False
    again = await submit(gql, token, details="Asking again")
    # the open request, unchanged, and no second code mailed
    assert (again["id"], again["status"], again["alreadyOpen"]) == (first["id"], "UNVERIFIED", True)
    assert await RightsRequest.filter(customer_id=jane.id).count() == 1
    assert (await RightsRequest.get(id=first["id"])).details == "What do you hold about me?"
    assert len(await mails("rights_code", "jane.doe@example.com")) == 1
    logged = await AuditEvent.filter(event="rights", operation="submit").order_by("id")
    assert [e.reason for e in logged] == ["unverified", f"already open: {first['id']}"]
    # still so once it is received
    request_id, code = await last_code("jane.doe@example.com")
    await gql(VERIFY, {"id": request_id, "code": code}, token=token)
    received_again = await submit(gql, token)
    assert (received_again["id"], received_again["status"]) == (first["id"], "PENDING")
    assert received_again["alreadyOpen"] is True
    # another kind is a separate request; after cancelling, the same kind can be asked again
    assert (await submit(gql, token, "ERASURE"))["alreadyOpen"] is False
    body = await gql(CANCEL, {"id": first["id"]}, token=token)
    assert body["data"]["cancelRightsRequest"]["status"] == "CANCELLED"
    fresh = await submit(gql, token)
    assert (fresh["status"], fresh["alreadyOpen"]) == ("UNVERIFIED", False)
    assert fresh["id"] != first["id"]


async def test_by_email_answers_the_same_for_unknown_addresses(
    gql: GQL, services: Services
) -> None:
    await customer(gql)
    known = await gql(BY_EMAIL, {"email": "Jane.Doe@example.com", "kind": "ERASURE"})
    unknown = await gql(BY_EMAIL, {"email": "nobody@example.com", "kind": "ERASURE"})
    assert known == unknown
    assert known["data"]["submitRightsRequestByEmail"]["__typename"] == (
        "RightsRequestByEmailAccepted"
    )
    # the intake worker handles both after the answer
    assert await run_intake(services) == 2
    assert await mails("rights_code", "nobody@example.com") == []
    # the account holder verifies with the mailed code, without signing in
    request_id, code = await last_code("jane.doe@example.com")
    body = await gql(VERIFY, {"id": request_id, "code": code})
    assert body["data"]["verifyRightsRequest"]["status"] == "PENDING"
    assert (await RightsRequest.get(id=request_id)).channel == "email"
    # asking again by email while it is open re-sends nothing new: no second request
    await gql(BY_EMAIL, {"email": "jane.doe@example.com", "kind": "ERASURE"})
    await run_intake(services)
    assert await RightsRequest.filter(kind="erasure").count() == 1


async def test_officer_approves_or_refuses_with_a_reason(gql: GQL, services: Services) -> None:
    token, _ = await customer(gql)
    access = await received(gql, token)
    erasure = await received(gql, token, kind="ERASURE")
    officer_token = await officer(gql, services)
    approved = await gql(REVIEW, {"id": access, "decision": "APPROVE", "reason": ""}, officer_token)
    assert approved["data"]["reviewRightsRequest"]["status"] == "APPROVED"
    # a refusal needs a reason
    bare = await gql(REVIEW, {"id": erasure, "decision": "REFUSE", "reason": " "}, officer_token)
    assert bare["data"]["reviewRightsRequest"]["code"] == "VALIDATION"
    assert (await RightsRequest.get(id=erasure)).status == "pending"
    reason = "Orders of the last 6 years must be kept for tax law."
    refused = await gql(
        REVIEW, {"id": erasure, "decision": "REFUSE", "reason": reason}, officer_token
    )
    node = refused["data"]["reviewRightsRequest"]
    assert node["status"] == "REFUSED"
    assert node["transitions"][-1] == {
        "fromStatus": "pending",
        "toStatus": "refused",
        "actorKind": "employee",
        "reason": reason,
    }
    [notice] = [m for m in await mails("rights_decided") if reason in m.body_text]
    assert notice.recipient == "jane.doe@example.com"
    # a refused request cannot be fulfilled: typed, nothing changed, logged
    before = await RightsTransition.filter(request_id=erasure).count()
    body = await gql(FULFIL, {"id": erasure}, officer_token)
    assert body["data"]["fulfillRightsRequest"]["code"] == "INVALID_TRANSITION"
    assert (await RightsRequest.get(id=erasure)).status == "refused"
    assert await RightsTransition.filter(request_id=erasure).count() == before
    assert [e.reason for e in await denials("fulfil")] == ["INVALID_TRANSITION"]


async def test_an_extension_is_once_before_the_due_date_with_a_mailed_reason(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    due = (await RightsRequest.get(id=request_id)).due_at
    officer_token = await officer(gql, services)
    too_long = await gql(EXTEND, {"id": request_id, "reason": "x", "months": 3}, officer_token)
    assert too_long["data"]["extendRightsRequest"]["code"] == "VALIDATION"
    reason = "Your data spans three systems being migrated."
    body = await gql(EXTEND, {"id": request_id, "reason": reason, "months": 2}, officer_token)
    node = body["data"]["extendRightsRequest"]
    assert (node["status"], node["extended"]) == ("EXTENDED", True)
    assert due is not None
    assert datetime.fromisoformat(node["dueAt"]) == add_months(due, 2)
    [notice] = await mails("rights_extended", "jane.doe@example.com")
    assert reason in notice.body_text
    again = await gql(EXTEND, {"id": request_id, "reason": reason, "months": 1}, officer_token)
    assert again["data"]["extendRightsRequest"]["code"] == "ALREADY_EXTENDED"
    # an extended request is still reviewed and fulfilled as usual
    approved = await gql(
        REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, officer_token
    )
    assert approved["data"]["reviewRightsRequest"]["status"] == "APPROVED"
    # and a request past its due date cannot be extended
    other = await received(gql, token, kind="ERASURE")
    clock.advance(days=40)
    officer_token = await officer(gql, services, "officer-2")  # staff sessions last hours
    late = await gql(EXTEND, {"id": other, "reason": reason, "months": 1}, officer_token)
    assert late["data"]["extendRightsRequest"]["code"] == "PAST_DUE"
    assert (await RightsRequest.get(id=other)).extended_at is None


@pytest.mark.parametrize("role", ["customer_care", "legal", "admin", "auditor", "marketing"])
async def test_only_privacy_officers_handle_requests(
    gql: GQL, services: Services, role: str
) -> None:
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    staff_token, staff_id = await signed_in_employee(gql, services, role)
    gql.client.cookies.clear()
    calls = [
        (REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, "reviewRightsRequest"),
        (EXTEND, {"id": request_id, "reason": "r", "months": 1}, "extendRightsRequest"),
        (FULFIL, {"id": request_id}, "fulfillRightsRequest"),
        (QUEUE, {"first": 10}, "rightsRequests"),
    ]
    for query, variables, field in calls:
        body = await gql(query, variables, staff_token)
        assert body["data"][field] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    stored = await RightsRequest.get(id=request_id)
    assert (stored.status, stored.extended_at, stored.decided_at) == ("pending", None, None)
    refused = await AuditEvent.filter(actor_id=staff_id, decision="deny")
    assert sorted(e.operation for e in refused) == sorted(
        ["reviewRightsRequest", "extendRightsRequest", "fulfillRightsRequest", "rightsRequests"]
    )


async def test_a_role_this_process_does_not_enforce_yet_is_refused_at_the_gate(
    gql: GQL, services: Services
) -> None:
    """A role granted moments ago (by another process, the CLI) is in the database before
    it is in this process's policy. Admitted on the database's word alone, a new officer's
    fulfilment would be denied every category inside: an export with nothing in it, and
    the request closed. The gate refuses until the policy knows the role."""
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    # given an officer written by another process (the CLI, say): this process's policy
    # has not loaded the grant yet
    created = await Employee.create(
        email="new.officer@staff.example.com",
        name="New Officer",
        password_hash=await services.passwords.hash(PASSWORD),
        created_at=services.clock.now(),
    )
    await EmployeeRole.create(
        employee_id=created.id, role="privacy_officer", granted_at=services.clock.now()
    )
    login_body = await gql(STAFF_LOGIN, {"email": created.email, "password": PASSWORD})
    staff_token = login_body["data"]["staffLogin"]["token"]
    gql.client.cookies.clear()
    # when they approve and fulfil the request
    for query, variables, field in (
        (REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, "reviewRightsRequest"),
        (FULFIL, {"id": request_id}, "fulfillRightsRequest"),
    ):
        body = await gql(query, variables, staff_token)
        # then each is refused, nothing changed, and the refusal is logged
        assert body["data"][field] is None
        assert body["errors"][0]["extensions"]["reason"] == "ROLE_REQUIRED"
    stored = await RightsRequest.get(id=request_id)
    assert (stored.status, stored.decided_at, stored.completed_at) == ("pending", None, None)
    refused = await AuditEvent.filter(actor_id=created.id, decision="deny")
    assert sorted(e.operation for e in refused) == ["fulfillRightsRequest", "reviewRightsRequest"]
    # and once the policy knows the role, the same calls work and the export holds the data
    await services.authorizer.reload()
    body = await gql(REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, staff_token)
    assert body["data"]["reviewRightsRequest"]["status"] == "APPROVED", body
    body = await gql(FULFIL, {"id": request_id}, staff_token)
    assert body["data"]["fulfillRightsRequest"]["status"] == "COMPLETED", body
    stored = await RightsRequest.get(id=request_id)
    assert stored.outcome == {"omitted": []}


async def test_the_queue_filters_and_flags_overdue_requests(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    token, _ = await customer(gql)
    old = await received(gql, token)
    clock.advance(days=20)
    other_token, _ = await customer(gql, "sam@example.com")
    recent = await received(gql, other_token, "sam@example.com", kind="ERASURE")
    await submit(gql, other_token)  # unverified: no deadline runs
    clock.advance(days=15)  # the first is now past its month, the second is not
    officer_token = await officer(gql, services)
    overdue = await gql(QUEUE, {"overdue": True, "first": 10}, officer_token)
    nodes = [e["node"] for e in overdue["data"]["rightsRequests"]["edges"]]
    assert [(n["id"], n["overdue"]) for n in nodes] == [(old, True)]
    assert nodes[0]["details"] == "What do you hold about me?"  # read for purpose legal
    pending = await gql(QUEUE, {"status": "PENDING", "first": 1}, officer_token)
    page = pending["data"]["rightsRequests"]
    assert [e["node"]["id"] for e in page["edges"]] == [old]
    assert page["pageInfo"]["hasNextPage"] is True
    after = page["pageInfo"]["endCursor"]
    rest = await gql(QUEUE, {"status": "PENDING", "first": 5, "after": after}, officer_token)
    assert [e["node"]["id"] for e in rest["data"]["rightsRequests"]["edges"]] == [recent]
    bad = await gql(QUEUE, {"first": 5, "after": "bm9wZQ=="}, officer_token)
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_rights_overdue_command_lists_late_requests(
    gql: GQL, settings: Settings, clock: FakeClock
) -> None:
    token, _ = await customer(gql)
    request_id = await received(gql, token)  # due a month after the test clock's start
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api",
        "rights",
        "overdue",
        "--fail",
        cwd=Path(__file__).parents[1],
        env={**os.environ, "DATABASE_URL": settings.database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    stdout = out.decode()
    # the command runs on the system clock, long after the test clock's January 2026
    assert process.returncode == 1, err.decode()
    assert request_id in stdout
    assert "jane" not in stdout  # ids and dates, never personal data


async def test_rectification_is_applied_once_approved_with_before_and_after(
    gql: GQL, services: Services
) -> None:
    token, jane = await customer(gql)
    changes = {
        "phone": "+44 20 7946 0111",
        "address": {
            "line1": "1 New Road",
            "city": "Leeds",
            "postalCode": "LS1 1AA",
            "country": "GB",
        },
    }
    request_id = await received(gql, token, kind="RECTIFICATION", changes=changes)
    officer_token = await officer(gql, services)
    await gql(REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, officer_token)
    body = await gql(FULFIL, {"id": request_id}, officer_token)
    node = body["data"]["fulfillRightsRequest"]
    assert node["status"] == "COMPLETED", body
    assert node["before"]["phone"] == jane.phone
    assert node["after"]["phone"] == "+442079460111"
    assert node["before"]["address"]["city"] == "London"
    updated = await Customer.get(id=jane.id)
    assert (updated.phone, updated.address_line1, updated.address_city) == (
        "+442079460111",
        "1 New Road",
        "Leeds",
    )
    # the values are in the request record, never in the audit log
    for event in await AuditEvent.all():
        row = " ".join(str(v) for v in event.__dict__.values())
        # whole values: a short digit run could occur by chance inside a hash
        assert "2079460111" not in row
        assert "20 7946 0111" not in row
        assert "New Road" not in row
    assert len(await mails("rights_completed", "jane.doe@example.com")) == 1


async def test_bad_rectification_input_is_typed_and_stores_nothing(gql: GQL) -> None:
    token, jane = await customer(gql)
    bad = await submit(gql, token, "RECTIFICATION", changes={"phone": "12"})
    assert bad["code"] == "VALIDATION"
    empty = await submit(gql, token, "RECTIFICATION")
    assert empty["code"] == "VALIDATION"
    wrong_kind = await submit(gql, token, "ACCESS", changes={"phone": "+442079460111"})
    assert wrong_kind["code"] == "VALIDATION"
    assert await RightsRequest.filter(customer_id=jane.id).count() == 0
    assert await OutboxMessage.filter(kind="rights_code").count() == 0


async def test_customers_see_their_own_requests(gql: GQL) -> None:
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    other_token, _ = await customer(gql, "sam@example.com")
    await submit(gql, other_token, "ERASURE")
    body = await gql(
        "{ me { rightsRequests { id kind status details dueAt transitions { toStatus } } } }",
        token=token,
    )
    [mine] = body["data"]["me"]["rightsRequests"]
    assert (mine["id"], mine["kind"], mine["status"]) == (request_id, "ACCESS", "PENDING")
    assert mine["details"] == "What do you hold about me?"
    assert [t["toStatus"] for t in mine["transitions"]] == ["unverified", "pending"]
    assert UUID(mine["id"])
    assert datetime.fromisoformat(mine["dueAt"]) > datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        days=27
    )
