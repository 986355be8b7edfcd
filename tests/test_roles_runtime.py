"""Roles and policy rules at run time: an admin's change takes effect at once on the
process that made it, is audited, and a refused change changes nothing and is logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.services import Services
from authz.adapter import current_version
from models import AuditEvent, Employee, EmployeeRole, PolicyRule
from tests.conftest import GQL, login, register, signed_in_employee

QUEUE = "{ supportQueue { id } }"
PAYLOAD = """
    __typename
    ... on RoleChanged { role changed employee { id roles } }
    ... on InputError { code field fields { field code } }
"""
GRANT = f"mutation($e: ID!, $r: String!) {{ grantRole(employeeId: $e, role: $r) {{ {PAYLOAD} }} }}"
REVOKE = (
    f"mutation($e: ID!, $r: String!) {{ revokeRole(employeeId: $e, role: $r) {{ {PAYLOAD} }} }}"
)
RULE_PAYLOAD = """
    __typename
    ... on PolicyRuleChanged { changed rule { role category action purpose condition effect } }
    ... on InputError { code field fields { field code } }
"""
ADD_RULE = f"mutation($i: PolicyRuleInput!) {{ addPolicyRule(input: $i) {{ {RULE_PAYLOAD} }} }}"
REMOVE_RULE = (
    f"mutation($i: PolicyRuleInput!) {{ removePolicyRule(input: $i) {{ {RULE_PAYLOAD} }} }}"
)
RULES = "{ policyRules { role category action purpose condition effect } }"

LEGAL_READS_CASES = {
    "role": "legal",
    "category": "support.cases",
    "action": "read",
    "purpose": "support",
    "condition": "*",
    "effect": "allow",
}


async def grants() -> list[tuple[str, str]]:
    rows = await EmployeeRole.all().values_list("employee_id", "role")
    return sorted((str(e), str(r)) for e, r in rows)


async def rules() -> list[tuple[str, ...]]:
    rows = (
        await PolicyRule.all()
        .order_by("id")
        .values_list("ptype", "v0", "v1", "v2", "v3", "v4", "v5")
    )
    return [tuple(str(v) for v in row) for row in rows]


def forbidden(body: dict[str, Any], field: str) -> bool:
    errors = body.get("errors") or []
    return body["data"] == {field: None} and [e["extensions"]["code"] for e in errors] == [
        "FORBIDDEN"
    ]


@pytest.fixture
async def restore_policy(services: Services) -> AsyncIterator[None]:
    """conftest keeps the seeded policy between tests: put back what a test changed."""
    before = (
        await PolicyRule.all().order_by("id").values("ptype", "v0", "v1", "v2", "v3", "v4", "v5")
    )
    yield
    after = (
        await PolicyRule.all().order_by("id").values("ptype", "v0", "v1", "v2", "v3", "v4", "v5")
    )
    if after != before:
        await PolicyRule.all().delete()
        await PolicyRule.bulk_create([PolicyRule(**row) for row in before])


async def test_a_granted_role_works_at_once_and_a_revoked_one_stops_at_once(
    gql: GQL, services: Services
) -> None:
    # given an admin, and a legal employee who may not read the support queue
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    ann, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    await services.authorizer.reload()
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    version = await current_version()
    # when the admin grants customer care
    body = await gql(GRANT, {"e": ann_id, "r": "customer_care"}, token=admin)
    # then it is granted, and the very next request of the employee is allowed
    assert body["data"]["grantRole"] == {
        "__typename": "RoleChanged",
        "role": "customer_care",
        "changed": True,
        "employee": {"id": ann_id, "roles": ["customer_care", "legal"]},
    }
    assert (await gql(QUEUE, token=ann)) == {"data": {"supportQueue": []}}
    # when the admin revokes it again
    body = await gql(REVOKE, {"e": ann_id, "r": "customer_care"}, token=admin)
    assert body["data"]["revokeRole"]["employee"]["roles"] == ["legal"]
    # then the next request is FORBIDDEN, and that denial is logged
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    access = await AuditEvent.filter(event="access", actor_id=ann_id).order_by("id")
    assert [(a.category, a.decision) for a in access] == [
        ("support.cases", "deny"),
        ("support.cases", "allow"),
        ("support.cases", "deny"),
    ]
    # and both changes moved the policy version and are audited, by the admin, without PII
    assert await current_version() == version + 2
    admin_events = await AuditEvent.filter(event="admin").order_by("id")
    assert [
        (e.operation, e.decision, e.actor_id, e.roles, e.subject_id, e.reason) for e in admin_events
    ] == [
        ("grantRole", "allow", admin_id, "admin", ann_id, "role=customer_care"),
        ("revokeRole", "allow", admin_id, "admin", ann_id, "role=customer_care"),
    ]
    assert await grants() == sorted([(admin_id, "admin"), (ann_id, "legal")])


async def test_granting_a_role_held_or_revoking_one_not_held_changes_nothing(
    gql: GQL, services: Services
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    before, version = await grants(), await current_version()
    again = await gql(GRANT, {"e": ann_id, "r": "legal"}, token=admin)
    absent = await gql(REVOKE, {"e": ann_id, "r": "marketing"}, token=admin)
    assert again["data"]["grantRole"]["changed"] is False
    assert absent["data"]["revokeRole"]["changed"] is False
    assert (await grants(), await current_version()) == (before, version)
    reasons = await AuditEvent.filter(event="admin").order_by("id").values_list("reason", flat=True)
    assert reasons == ["role=legal, unchanged", "role=marketing, unchanged"]


async def test_only_an_admin_may_change_roles_and_a_refusal_is_logged(
    gql: GQL, services: Services
) -> None:
    # given a care agent, a legal employee and a customer
    care, care_id = await signed_in_employee(gql, services, "customer_care", name="cara")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    await register(gql)
    customer = await login(gql)
    before, version = await grants(), await current_version()
    # when the agent grants themself admin, revokes another's role, or edits a rule
    attempts = [
        (await gql(GRANT, {"e": care_id, "r": "admin"}, token=care), "grantRole"),
        (await gql(REVOKE, {"e": ann_id, "r": "legal"}, token=care), "revokeRole"),
        (await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=care), "addPolicyRule"),
        (await gql(GRANT, {"e": care_id, "r": "admin"}, token=customer), "grantRole"),
    ]
    # then each is FORBIDDEN, nothing changed, and each refusal is logged
    assert all(forbidden(body, field) for body, field in attempts)
    assert (await grants(), await current_version()) == (before, version)
    denials = await AuditEvent.filter(decision="deny").order_by("id")
    assert [(d.actor_kind, d.operation, d.reason) for d in denials] == [
        ("employee", "grantRole", "requires role admin"),
        ("employee", "revokeRole", "requires role admin"),
        ("employee", "addPolicyRule", "requires role admin"),
        ("customer", "grantRole", "requires role admin"),
    ]
    assert {d.actor_id for d in denials[:3]} == {care_id}
    # and an anonymous caller is asked to sign in
    gql.client.cookies.clear()
    body = await gql(GRANT, {"e": care_id, "r": "admin"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bad_role_changes_are_input_errors_and_change_nothing(
    gql: GQL, services: Services
) -> None:
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    _, gone_id = await signed_in_employee(gql, services, "legal", name="gone")
    await Employee.filter(id=gone_id).update(active=False)
    before, version = await grants(), await current_version()
    own = "SEPARATION_OF_DUTIES"  # admins do not change their own roles (issue 14)
    cases = [
        (GRANT, {"e": ann_id, "r": "astronaut"}, "role", "VALIDATION"),
        (REVOKE, {"e": ann_id, "r": "Legal"}, "role", "VALIDATION"),
        (GRANT, {"e": admin_id, "r": "legal"}, "employeeId", own),
        (REVOKE, {"e": admin_id, "r": "admin"}, "employeeId", own),
        (GRANT, {"e": gone_id, "r": "customer_care"}, "employeeId", "VALIDATION"),  # inactive
    ]
    for query, variables, field, code in cases:
        body = await gql(query, variables, token=admin)
        result = next(iter(body["data"].values()))
        assert (result["__typename"], result["code"], result["field"]) == (
            "InputError",
            code,
            field,
        ), variables
    unknown = await gql(
        GRANT, {"e": "00000000-0000-0000-0000-000000000000", "r": "legal"}, token=admin
    )
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await grants(), await current_version()) == (before, version)
    # only the refusals to keep duties separate are logged (as denials), not typos
    refused = await AuditEvent.filter(event="admin").order_by("id")
    assert [(e.operation, e.decision, e.subject_id, e.reason) for e in refused] == [
        ("grantRole", "deny", admin_id, f"{own}: role=legal"),
        ("revokeRole", "deny", admin_id, f"{own}: role=admin"),
    ]


async def test_a_rule_added_and_removed_takes_effect_at_once_and_is_audited(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given a legal employee, who may not read the support queue
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    ann, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    await services.authorizer.reload()
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    # when the admin adds a rule letting legal read support cases
    added = await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    # then the next request is allowed, decided by that rule
    assert added["data"]["addPolicyRule"] == {
        "__typename": "PolicyRuleChanged",
        "changed": True,
        "rule": LEGAL_READS_CASES,
    }
    assert await gql(QUEUE, token=ann) == {"data": {"supportQueue": []}}
    allowed = await AuditEvent.get(event="access", actor_id=ann_id, decision="allow")
    assert allowed.rule == "legal, support.cases, read, support, *, allow"
    assert LEGAL_READS_CASES in (await gql(RULES, token=admin))["data"]["policyRules"]
    # when it is added again, nothing changes; when removed, the next request is refused
    again = await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    assert again["data"]["addPolicyRule"]["changed"] is False
    removed = await gql(REMOVE_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    assert removed["data"]["removePolicyRule"]["changed"] is True
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    assert LEGAL_READS_CASES not in (await gql(RULES, token=admin))["data"]["policyRules"]
    # and every edit is audited with the rule's text
    text = "p, legal, support.cases, read, support, *, allow"
    events = await AuditEvent.filter(event="admin").order_by("id")
    assert [(e.operation, e.actor_id, e.reason) for e in events] == [
        ("addPolicyRule", admin_id, text),
        ("addPolicyRule", admin_id, f"{text} (unchanged)"),
        ("removePolicyRule", admin_id, text),
    ]


async def test_bad_rules_are_refused_and_change_nothing(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    before, version = await rules(), await current_version()
    nonsense = {
        "role": "astronaut",
        "category": "contactx.*",
        "action": "peek",
        "purpose": "fun",
        "condition": "open",
        "effect": "maybe",
    }
    body = await gql(ADD_RULE, {"i": nonsense}, token=admin)
    result = body["data"]["addPolicyRule"]
    assert result["code"] == "VALIDATION"
    assert [f["field"] for f in result["fields"]] == list(nonsense)
    # no rule may allow credentials (a glob singling them out included)
    for category in ("account.credentials", "account.*", "*.credentials"):
        rule = {**LEGAL_READS_CASES, "category": category, "purpose": "legal"}
        result = (await gql(ADD_RULE, {"i": rule}, token=admin))["data"]["addPolicyRule"]
        assert (result["__typename"], result["field"]) == ("InputError", "category"), category
    # the credentials floor cannot be removed
    floor = {
        "role": "staff",
        "category": "account.credentials",
        "action": "*",
        "purpose": "*",
        "condition": "*",
        "effect": "deny",
    }
    result = (await gql(REMOVE_RULE, {"i": floor}, token=admin))["data"]["removePolicyRule"]
    assert (result["__typename"], result["field"]) == ("InputError", "category")
    assert (await rules(), await current_version()) == (before, version)


async def test_an_allow_everything_rule_still_never_reads_credentials(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given the admin lets legal read every category for legal purposes
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    everything = {**LEGAL_READS_CASES, "category": "*", "purpose": "legal"}
    body = await gql(ADD_RULE, {"i": everything}, token=admin)
    assert body["data"]["addPolicyRule"]["changed"] is True
    # then legal reads devices for legal purposes, but credentials stay denied (deny overrides)
    decide = services.authorizer.decide
    subject = f"employee:{ann_id}"
    assert decide(subject=subject, category="device.ip", action="read", purpose="legal").allowed
    credentials = decide(
        subject=subject, category="account.credentials", action="read", purpose="legal"
    )
    assert not credentials.allowed
    assert credentials.rule.startswith("staff, account.credentials")


async def test_auditors_read_the_rules_other_staff_do_not(gql: GQL, services: Services) -> None:
    auditor, _ = await signed_in_employee(gql, services, "auditor", name="audrey")
    care, care_id = await signed_in_employee(gql, services, "customer_care", name="cara")
    listed = (await gql(RULES, token=auditor))["data"]["policyRules"]
    assert {
        "role": "staff",
        "category": "account.credentials",
        "action": "*",
        "purpose": "*",
        "condition": "*",
        "effect": "deny",
    } in listed
    assert len(listed) == await PolicyRule.filter(ptype="p").count()
    assert forbidden(await gql(RULES, token=care), "policyRules")
    denial = await AuditEvent.get(decision="deny")
    assert (denial.actor_id, denial.operation, denial.reason) == (
        care_id,
        "policyRules",
        "requires role admin or auditor",
    )
