"""Explainable denials (issue 14, point 4): a FORBIDDEN error says why in `extensions`
(a stable reason code, the condition unmet or the rule that decided, the policy version
in force), and the decision log row says the same."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.services import Services
from authz.adapter import current_version
from models import AuditEvent, ConsentRecord, Customer, SupportCase
from tests.conftest import GQL, signed_in_employee, stored_customer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
READ = """query($id: ID!, $p: Purpose!) {
  customer(id: $id, purpose: $p) { email phone consents { purpose } }
}"""
CARE_CONTACT = "customer_care, contact.*, read, support, open_case, allow"


async def customer(*, open_case: bool = False, consent: bool = False) -> Customer:
    stored = await stored_customer(1, at=T0)
    if open_case:
        await SupportCase.create(customer=stored, subject="Ring", message="Where?", created_at=T0)
    if consent:
        await ConsentRecord.create(
            customer=stored, purpose="marketing.email", granted=True, source="registration", at=T0
        )
    return stored


def error_at(body: dict[str, Any], field: str) -> dict[str, Any]:
    [error] = [e for e in body["errors"] if e["path"] == ["customer", field]]
    assert body["data"]["customer"][field] is None
    extensions: dict[str, Any] = error["extensions"]
    return extensions


async def logged(employee_id: str, category: str) -> tuple[str, str, str]:
    """The log row of the decision on `category` (one row may hold several categories
    decided alike)."""
    rows = await AuditEvent.filter(event="access", actor_id=employee_id)
    [row] = [r for r in rows if category in r.category.split(",")]
    return row.decision, row.rule, row.reason


@pytest.mark.parametrize(
    ("roles", "purpose", "conditions", "field", "category", "expected", "reason"),
    [
        # marketing reading a phone: a deny rule matched
        (
            ("marketing",),
            "MARKETING_EMAIL",
            {"consent"},
            "phone",
            "contact.phone",
            {"reason": "DENY_RULE", "rule": "marketing, contact.phone, *, *, *, deny"},
            "DENY_RULE: denied by rule",
        ),
        # customer care reading an email without an open case: the condition is unmet
        (
            ("customer_care",),
            "SUPPORT",
            set(),
            "email",
            "contact.email",
            {"reason": "CONDITION_UNMET", "condition": "open_case", "rule": CARE_CONTACT},
            "CONDITION_UNMET: condition not met: open_case",
        ),
        # customer care reading an email for marketing: allowed only for support
        (
            ("customer_care",),
            "MARKETING_EMAIL",
            {"open_case", "consent"},
            "email",
            "contact.email",
            {"reason": "PURPOSE_NOT_ALLOWED", "rule": CARE_CONTACT},
            "PURPOSE_NOT_ALLOWED: allowed for purpose support, not marketing.email",
        ),
        # a fraud analyst reading consents: no rule grants that (default deny)
        (
            ("fraud_analyst",),
            "SECURITY",
            set(),
            "consents",
            "consent.history",
            {"reason": "NO_RULE"},
            "NO_RULE: no rule grants this (default deny)",
        ),
        # an employee with no role at all
        ((), "SUPPORT", {"open_case"}, "email", "contact.email", {"reason": "NO_RULE"}, None),
        # an admin, even with customer care too: value-blind
        (
            ("admin",),
            "SUPPORT",
            {"open_case"},
            "email",
            "contact.email",
            {"reason": "VALUE_BLIND_ROLE"},
            "VALUE_BLIND_ROLE: admin may see no personal-data value",
        ),
        (
            ("admin", "customer_care"),
            "SUPPORT",
            {"open_case"},
            "phone",
            "contact.phone",
            {"reason": "VALUE_BLIND_ROLE"},
            None,
        ),
    ],
)
async def test_a_denied_field_says_why_and_the_log_says_the_same(
    gql: GQL,
    services: Services,
    roles: tuple[str, ...],
    purpose: str,
    conditions: set[str],
    field: str,
    category: str,
    expected: dict[str, str],
    reason: str | None,
) -> None:
    # given a customer with the conditions, and an employee with the roles
    subject = await customer(open_case="open_case" in conditions, consent="consent" in conditions)
    token, employee_id = await signed_in_employee(gql, services, *roles, name="e")
    # when the employee reads the customer for the purpose
    body = await gql(READ, {"id": str(subject.id), "p": purpose}, token=token)
    # then the field is null and its FORBIDDEN error carries the reason, the rule (when
    # there is one) and the policy version in force
    version = await current_version()
    assert error_at(body, field) == {"code": "FORBIDDEN", **expected, "policyVersion": version}
    # and the decision log row has the same rule, and the code first in its reason
    decision, rule, logged_reason = await logged(employee_id, category)
    assert (decision, rule) == ("deny", expected.get("rule", ""))
    assert logged_reason.startswith(f"{expected['reason']}: ")
    if reason is not None:
        assert logged_reason == reason
    # and nothing else was refused on the way
    assert await AuditEvent.filter(event="admin").count() == 0


async def test_two_customers_on_one_page_each_get_their_own_reason(
    gql: GQL, services: Services
) -> None:
    # given one customer with an open case and one without, read by customer care
    with_case = await customer(open_case=True)
    without = await stored_customer(2, at=T0)
    token, _ = await signed_in_employee(gql, services, "customer_care", name="cara")
    query = """query($a: ID!, $b: ID!) {
      a: customer(id: $a, purpose: SUPPORT) { email consents { purpose } }
      b: customer(id: $b, purpose: SUPPORT) { email consents { purpose } }
    }"""
    # when both are read in one request
    body = await gql(query, {"a": str(with_case.id), "b": str(without.id)}, token=token)
    # then the first email is shown, the second is refused for the unmet condition, and
    # consents are refused for both for want of any rule
    assert body["data"]["a"]["email"] == with_case.email
    reasons = {tuple(e["path"]): e["extensions"]["reason"] for e in body["errors"]}
    assert reasons == {
        ("b", "email"): "CONDITION_UNMET",
        ("a", "consents"): "NO_RULE",
        ("b", "consents"): "NO_RULE",
    }


async def test_operations_refused_say_why(gql: GQL, services: Services) -> None:
    # given a legal employee, who holds no rule for support cases
    legal, _ = await signed_in_employee(gql, services, "legal", name="ann")
    # when they open the support queue (a Casbin-decided operation)
    queue = await gql("{ supportQueue { id } }", token=legal)
    # then the refusal carries Casbin's reason and the policy version
    [error] = queue["errors"]
    assert error["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "NO_RULE",
        "policyVersion": await current_version(),
    }
    # and an operation for other roles (a role check in code) says ROLE_REQUIRED
    rules = await gql("{ policyRules { role } }", token=legal)
    assert rules["errors"][0]["extensions"] == {"code": "FORBIDDEN", "reason": "ROLE_REQUIRED"}
    denials = await AuditEvent.filter(decision="deny").order_by("id")
    assert [(d.category, d.reason) for d in denials] == [
        ("support.cases", "NO_RULE: no rule grants this (default deny)"),
        ("", "requires role admin or auditor or privacy_officer"),
    ]


async def test_the_explanation_is_memoised_with_the_decision(services: Services) -> None:
    # given a care agent's denial explained once
    decide = services.authorizer.decide
    request = {"category": "contact.email", "action": "read", "purpose": "support"}
    first = decide(subject="customer_care", **request)
    # then asking again answers the same decision object, and an allow carries no code
    assert decide(subject="customer_care", **request) is first
    assert (first.code, first.condition) == ("CONDITION_UNMET", "open_case")
    allowed = decide(subject="customer_care", conditions=("open_case",), **request)
    assert (allowed.allowed, allowed.code, allowed.logged_reason) == (True, "", "allowed")


async def test_an_account_holders_field_refused_to_staff_is_logged(
    gql: GQL, services: Services
) -> None:
    # given a customer, and a care agent looking them up
    customer = await stored_customer(at=datetime.now(UTC))
    agent, agent_id = await signed_in_employee(gql, services, "customer_care")
    before = await AuditEvent.filter(decision="deny").count()
    # when the agent asks for a field only the account holder reads
    body = await gql(
        "query($id: ID!) { customer(id: $id, purpose: SUPPORT) { id pendingPolicy { version } } }",
        {"id": str(customer.id)},
        token=agent,
    )
    # then it is refused at its path, for want of being the account holder
    assert body["data"]["customer"] == {"id": str(customer.id), "pendingPolicy": None}
    [error] = body["errors"]
    assert error["path"] == ["customer", "pendingPolicy"]
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "ROLE_REQUIRED"}
    # and the refusal is in the decision log, the agent's
    denials = await AuditEvent.filter(decision="deny").order_by("id")
    assert len(denials) == before + 1
    assert (denials[-1].actor_id, denials[-1].operation, denials[-1].reason) == (
        agent_id,
        "pendingPolicy",
        "requires the account holder",
    )
