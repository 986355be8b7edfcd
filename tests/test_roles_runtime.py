"""Roles and policy rules at run time: a change that may widen access is a proposal that
applies, on the process that approved it, the moment a privacy officer approves it; a
narrowing change takes effect at once. Every change is audited, and a refused change
changes nothing and is logged."""

from __future__ import annotations

from api.services import Services
from authz.adapter import current_version
from models import AuditEvent, Employee, PolicyProposal, PolicyRule
from tests.access_helpers import (
    ADD_RULE,
    APPROVE,
    GRANT,
    REMOVE_RULE,
    REVOKE,
    approved,
    forbidden,
    grants,
    proposal_of,
    rule,
    stored,
)
from tests.conftest import GQL, login, register, signed_in_employee

QUEUE = "{ supportQueue { id } }"
RULES = "{ policyRules { role category action purpose condition effect } }"
LEGAL_READS_CASES = rule("legal", "support.cases", "read", "support", "*", "allow")


async def test_a_granted_role_works_once_approved_and_a_revoked_one_stops_at_once(
    gql: GQL, services: Services
) -> None:
    # given an admin, a privacy officer, and a legal employee who may not read the queue
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    officer, officer_id = await signed_in_employee(gql, services, "privacy_officer", name="po")
    ann, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    before = await stored()
    version = before[2]
    # when the admin grants customer care, it is a proposal: nothing changed yet
    body = await gql(GRANT, {"e": ann_id, "r": "customer_care"}, token=admin)
    proposal = proposal_of(body, "grantRole")
    assert body["data"]["grantRole"]["created"] is True
    grant = f"grant customer_care to employee:{ann_id}"
    assert (proposal["status"], proposal["change"], proposal["proposedBy"]) == (
        "pending",
        grant,
        admin_id,
    )
    assert (proposal["employeeId"], proposal["role"]) == (ann_id, "customer_care")
    assert await stored() == before
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    # when the privacy officer approves it, the very next request of the employee is allowed
    done = await approved(gql, proposal["id"], officer)
    assert (done["status"], done["appliedVersion"]) == ("approved", version + 1)
    held = [(admin_id, "admin"), (officer_id, "privacy_officer"), (ann_id, "legal")]
    assert await grants() == sorted([*held, (ann_id, "customer_care")])
    assert (await gql(QUEUE, token=ann)) == {"data": {"supportQueue": []}}
    # when the admin revokes it again, that narrows access and applies at once
    body = await gql(REVOKE, {"e": ann_id, "r": "customer_care"}, token=admin)
    assert body["data"]["revokeRole"] == {
        "__typename": "RoleChanged",
        "role": "customer_care",
        "changed": True,
        "employee": {"id": ann_id, "roles": ["legal"]},
    }
    # then the next request is FORBIDDEN, and that denial is logged
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    access = await AuditEvent.filter(event="access", actor_id=ann_id).order_by("id")
    assert [(a.category, a.decision) for a in access] == [
        ("support.cases", "deny"),
        ("support.cases", "deny"),
        ("support.cases", "allow"),
        ("support.cases", "deny"),
    ]
    # and both applied changes moved the policy version; every step is audited, without PII
    assert await current_version() == version + 2
    admin_events = await AuditEvent.filter(event="admin").order_by("id")
    assert [
        (e.operation, e.decision, e.actor_id, e.roles, e.subject_id, e.reason) for e in admin_events
    ] == [
        ("grantRole", "allow", admin_id, "admin", proposal["id"], f"proposed {grant}"),
        (
            "approvePolicyProposal",
            "allow",
            officer_id,
            "privacy_officer",
            proposal["id"],
            f"version={version + 1}: {grant}",
        ),
        (
            "revokeRole",
            "allow",
            admin_id,
            "admin",
            ann_id,
            f"revoke customer_care from employee:{ann_id}",
        ),
    ]
    assert await grants() == sorted(held)


async def test_granting_a_role_held_or_revoking_one_not_held_changes_nothing(
    gql: GQL, services: Services
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    before = await stored()
    again = await gql(GRANT, {"e": ann_id, "r": "legal"}, token=admin)
    absent = await gql(REVOKE, {"e": ann_id, "r": "marketing"}, token=admin)
    assert again["data"]["grantRole"]["changed"] is False
    assert absent["data"]["revokeRole"]["changed"] is False
    # and a widening grant proposed twice is one proposal, the second answer not new
    first = await gql(GRANT, {"e": ann_id, "r": "customer_care"}, token=admin)
    second = await gql(GRANT, {"e": ann_id, "r": "customer_care"}, token=admin)
    assert first["data"]["grantRole"]["created"] is True
    assert second["data"]["grantRole"]["created"] is False
    assert proposal_of(first, "grantRole") == proposal_of(second, "grantRole")
    assert await PolicyProposal.all().count() == 1
    assert await stored() == before
    reasons = await AuditEvent.filter(event="admin").order_by("id").values_list("reason", flat=True)
    grant = f"grant customer_care to employee:{ann_id}"
    assert reasons == [
        f"grant legal to employee:{ann_id} (unchanged)",
        f"revoke marketing from employee:{ann_id} (unchanged)",
        f"proposed {grant}",
        f"proposed {grant} (already pending)",
    ]


async def test_only_an_admin_may_change_roles_and_a_refusal_is_logged(
    gql: GQL, services: Services
) -> None:
    # given a care agent, a legal employee, an admin's pending proposal and a customer
    care, care_id = await signed_in_employee(gql, services, "customer_care", name="cara")
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    body = await gql(GRANT, {"e": ann_id, "r": "fraud_analyst"}, token=admin)
    pending = proposal_of(body, "grantRole")["id"]
    await register(gql)
    customer = await login(gql)
    before = await stored()
    # when the agent grants themself admin, revokes another's role, edits a rule or approves
    # the proposal, and the admin approves it too
    attempts = [
        (await gql(GRANT, {"e": care_id, "r": "admin"}, token=care), "grantRole"),
        (await gql(REVOKE, {"e": ann_id, "r": "legal"}, token=care), "revokeRole"),
        (await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=care), "addPolicyRule"),
        (await gql(APPROVE, {"id": pending}, token=care), "approvePolicyProposal"),
        (await gql(APPROVE, {"id": pending}, token=admin), "approvePolicyProposal"),
        (await gql(GRANT, {"e": care_id, "r": "admin"}, token=customer), "grantRole"),
    ]
    # then each is FORBIDDEN, nothing changed, the proposal is pending, each refusal logged
    assert all(forbidden(body, field) for body, field in attempts)
    assert await stored() == before
    assert (await PolicyProposal.get(id=pending)).status == "pending"
    denials = await AuditEvent.filter(decision="deny").order_by("id")
    assert [(d.actor_kind, d.operation, d.reason) for d in denials] == [
        ("employee", "grantRole", "requires role admin"),
        ("employee", "revokeRole", "requires role admin"),
        ("employee", "addPolicyRule", "requires role admin"),
        ("employee", "approvePolicyProposal", "requires role privacy_officer"),
        ("employee", "approvePolicyProposal", "requires role privacy_officer"),
        ("customer", "grantRole", "requires role admin"),
    ]
    assert {d.actor_id for d in denials[:4]} == {care_id}
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
    before = await stored()
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
    assert await stored() == before
    assert not await PolicyProposal.exists()
    # only the refusals to keep duties separate are logged (as denials), not typos
    refused = await AuditEvent.filter(event="admin").order_by("id")
    assert [(e.operation, e.decision, e.subject_id, e.reason) for e in refused] == [
        ("grantRole", "deny", admin_id, f"{own}: grant legal to employee:{admin_id}"),
        ("revokeRole", "deny", admin_id, f"{own}: revoke admin from employee:{admin_id}"),
    ]


async def test_an_allow_rule_applies_once_approved_and_its_removal_at_once(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given a legal employee, who may not read the support queue
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    officer, officer_id = await signed_in_employee(gql, services, "privacy_officer", name="po")
    ann, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    before = await stored()
    # when the admin adds a rule letting legal read support cases, twice
    first = await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    second = await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    # then it is one proposal of that rule, and nothing changed yet
    proposal = proposal_of(first, "addPolicyRule")
    assert (proposal["kind"], proposal["rule"]) == ("add_rule", LEGAL_READS_CASES)
    assert proposal_of(second, "addPolicyRule")["id"] == proposal["id"]
    assert (
        first["data"]["addPolicyRule"]["created"],
        second["data"]["addPolicyRule"]["created"],
    ) == (
        True,
        False,
    )
    assert await stored() == before
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    assert LEGAL_READS_CASES not in (await gql(RULES, token=admin))["data"]["policyRules"]
    # when the privacy officer approves it, the next request is allowed, decided by that rule
    done = await approved(gql, proposal["id"], officer)
    assert done["appliedVersion"] == before[2] + 1 == await current_version()
    assert await gql(QUEUE, token=ann) == {"data": {"supportQueue": []}}
    allowed = await AuditEvent.get(event="access", actor_id=ann_id, decision="allow")
    assert allowed.rule == "legal, support.cases, read, support, *, allow"
    assert LEGAL_READS_CASES in (await gql(RULES, token=admin))["data"]["policyRules"]
    # when it is added again, nothing changes; when removed, at once the next request is refused
    again = await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    assert again["data"]["addPolicyRule"] == {
        "__typename": "PolicyRuleChanged",
        "changed": False,
        "rule": LEGAL_READS_CASES,
    }
    removed = await gql(REMOVE_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    assert removed["data"]["removePolicyRule"] == {
        "__typename": "PolicyRuleChanged",
        "changed": True,
        "rule": LEGAL_READS_CASES,
    }
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    assert LEGAL_READS_CASES not in (await gql(RULES, token=admin))["data"]["policyRules"]
    assert await stored() == (before[0], before[1], before[2] + 2)
    # and every step is audited with the rule's text
    text = "p, legal, support.cases, read, support, *, allow"
    events = await AuditEvent.filter(event="admin").order_by("id")
    assert [(e.operation, e.actor_id, e.subject_id, e.reason) for e in events] == [
        ("addPolicyRule", admin_id, proposal["id"], f"proposed add {text}"),
        ("addPolicyRule", admin_id, proposal["id"], f"proposed add {text} (already pending)"),
        (
            "approvePolicyProposal",
            officer_id,
            proposal["id"],
            f"version={before[2] + 1}: add {text}",
        ),
        ("addPolicyRule", admin_id, "", f"add {text} (unchanged)"),
        ("removePolicyRule", admin_id, "", f"remove {text}"),
    ]


async def test_bad_rules_are_refused_and_change_nothing(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    before = await stored()
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
        credentials = {**LEGAL_READS_CASES, "category": category, "purpose": "legal"}
        result = (await gql(ADD_RULE, {"i": credentials}, token=admin))["data"]["addPolicyRule"]
        assert (result["__typename"], result["field"]) == ("InputError", "category"), category
    # the credentials floor cannot be removed
    floor = rule("staff", "account.credentials", "*", "*", "*", "deny")
    result = (await gql(REMOVE_RULE, {"i": floor}, token=admin))["data"]["removePolicyRule"]
    assert (result["__typename"], result["field"]) == ("InputError", "category")
    # and none of them became a proposal either
    assert await stored() == before
    assert not await PolicyProposal.exists()


async def test_an_allow_everything_rule_still_never_reads_credentials(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given the admin proposes letting legal read every category for legal purposes, and
    # the privacy officer approves it
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    everything = {**LEGAL_READS_CASES, "category": "*", "purpose": "legal"}
    body = await gql(ADD_RULE, {"i": everything}, token=admin)
    decide = services.authorizer.decide
    subject = f"employee:{ann_id}"
    device = {"subject": subject, "category": "device.ip", "action": "read", "purpose": "legal"}
    assert not decide(**device).allowed  # not before it is approved
    assert (await approved(gql, proposal_of(body, "addPolicyRule")["id"], officer))[
        "appliedVersion"
    ]
    # then legal reads devices for legal purposes, but credentials stay denied (deny overrides)
    assert decide(**device).allowed
    credentials = decide(
        subject=subject, category="account.credentials", action="read", purpose="legal"
    )
    assert not credentials.allowed
    assert credentials.rule.startswith("staff, account.credentials")


async def test_auditors_and_privacy_officers_read_the_rules_other_staff_do_not(
    gql: GQL, services: Services
) -> None:
    auditor, _ = await signed_in_employee(gql, services, "auditor", name="audrey")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    care, care_id = await signed_in_employee(gql, services, "customer_care", name="cara")
    listed = (await gql(RULES, token=auditor))["data"]["policyRules"]
    assert rule("staff", "account.credentials", "*", "*", "*", "deny") in listed
    assert len(listed) == await PolicyRule.filter(ptype="p").count()
    assert (await gql(RULES, token=officer))["data"]["policyRules"] == listed
    assert forbidden(await gql(RULES, token=care), "policyRules")
    denial = await AuditEvent.get(decision="deny")
    assert (denial.actor_id, denial.operation, denial.reason) == (
        care_id,
        "policyRules",
        "requires role admin or auditor or privacy_officer",
    )
