"""Support cases: customers open them, customer care works the queue; every staff call is
decided by Casbin and logged, and a refusal changes nothing."""

from __future__ import annotations

from typing import Any

from api.services import Services
from models import AuditEvent, SupportCase
from tests.conftest import GQL, login, register, signed_in_employee

OPEN_CASE = """
mutation($subject: String!, $message: String!) {
  openSupportCase(subject: $subject, message: $message) {
    __typename
    ... on SupportCase { id subject status customerId }
    ... on InputError { code field }
  }
}
"""
QUEUE = "{ supportQueue { id subject message status assigneeId } }"
ASSIGN = "mutation($id: ID!) { assignSupportCase(id: $id) { id assigneeId status } }"
CLOSE = "mutation($id: ID!) { closeSupportCase(id: $id) { id status closedAt } }"


async def customer_case(gql: GQL) -> dict[str, Any]:
    await register(gql)
    token = await login(gql)
    body = await gql(
        OPEN_CASE, {"subject": "Where is my ring?", "message": "Order 1234"}, token=token
    )
    return body["data"]["openSupportCase"]


async def test_a_customer_opens_a_case_and_care_works_it(gql: GQL, services: Services) -> None:
    # given a customer's open case and a care agent
    case = await customer_case(gql)
    assert (case["__typename"], case["status"]) == ("SupportCase", "open")
    token, agent_id = await signed_in_employee(gql, services, "customer_care")
    # when the agent reads the queue, takes the case and closes it
    queue = (await gql(QUEUE, token=token))["data"]["supportQueue"]
    assert [(c["id"], c["message"]) for c in queue] == [(case["id"], "Order 1234")]
    assigned = (await gql(ASSIGN, {"id": case["id"]}, token=token))["data"]["assignSupportCase"]
    assert assigned["assigneeId"] == agent_id
    closed = (await gql(CLOSE, {"id": case["id"]}, token=token))["data"]["closeSupportCase"]
    assert closed["status"] == "closed"
    assert closed["closedAt"]
    # then each staff call was an allowed, logged decision for purpose support, and the
    # read of the queue names the customers whose cases were in it
    rows = await AuditEvent.filter(event="access", actor_id=agent_id).order_by("id")
    customer_id = case["customerId"]
    assert [(r.category, r.action, r.purpose, r.decision, r.subject_id) for r in rows] == [
        ("support.cases", "read", "support", "allow", customer_id),
        ("support.cases", "write", "support", "allow", ""),
        ("support.cases", "write", "support", "allow", ""),
    ]
    assert all(r.rule.startswith("customer_care, support.cases") for r in rows)


async def test_other_roles_are_refused_logged_and_change_nothing(
    gql: GQL, services: Services
) -> None:
    case = await customer_case(gql)
    for role in ("marketing", "fraud_analyst", "auditor", "admin"):
        token, employee_id = await signed_in_employee(gql, services, role)
        # when they try the queue and to close the case
        queue = await gql(QUEUE, token=token)
        closed = await gql(CLOSE, {"id": case["id"]}, token=token)
        # then both are FORBIDDEN at their paths, nothing changed, and both denials are logged
        assert queue["data"]["supportQueue"] is None
        assert queue["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert queue["errors"][0]["path"] == ["supportQueue"]
        assert closed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await SupportCase.get()).status == "open"
        denials = await AuditEvent.filter(actor_id=employee_id, decision="deny").order_by("id")
        assert [(d.category, d.action) for d in denials] == [
            ("support.cases", "read"),
            ("support.cases", "write"),
        ], role


async def test_customers_and_anonymous_cannot_read_the_queue(gql: GQL) -> None:
    await customer_case(gql)
    token = await login(gql)
    customer = await gql(QUEUE, token=token)
    assert customer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    gql.client.cookies.clear()  # the login above left a session cookie
    anonymous = await gql(QUEUE)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_case_needs_a_subject_and_a_message(gql: GQL) -> None:
    await register(gql)
    token = await login(gql)
    body = await gql(OPEN_CASE, {"subject": " ", "message": ""}, token=token)
    result = body["data"]["openSupportCase"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "InputError",
        "VALIDATION",
        "subject",
    )
    assert await SupportCase.all().count() == 0
