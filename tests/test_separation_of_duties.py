"""Admins and auditors stay value-blind (issue 14, point 1): however the rules or grants
are edited, neither sees a personal-data value. The engine denies it at decision time; a
change that would let the stored policy allow it is refused, changes nothing and is
logged; and a change that may widen access is only a proposal, which a privacy officer
cannot approve once it would let a value-blind role see a value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.services import Services
from authz.adapter import current_version, employee_subject
from authz.registry import PERSONAL_DATA, PURPOSES, VALUE_ACTIONS
from authz.seed import default_rules
from authz.separation import CONDITION_SETS, FULL_SPACE, PolicyState, copy_enforcer, first_breach
from models import AuditEvent, Customer, PolicyProposal, PolicyRule, SupportCase
from tests.access_helpers import APPROVE, approved, proposal_of, stored
from tests.conftest import GQL, signed_in_employee, stored_customer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
READ = "query($id: ID!, $p: Purpose!) { customer(id: $id, purpose: $p) { email phone } }"
RULE_PAYLOAD = """
    __typename
    ... on PolicyRuleChanged { changed }
    ... on PolicyChangeProposed { created proposal { id status } }
    ... on InputError { code field message }
"""
ADD = f"mutation($i: PolicyRuleInput!) {{ addPolicyRule(input: $i) {{ {RULE_PAYLOAD} }} }}"
REMOVE = f"mutation($i: PolicyRuleInput!) {{ removePolicyRule(input: $i) {{ {RULE_PAYLOAD} }} }}"
GRANT = """mutation($e: ID!, $r: String!) { grantRole(employeeId: $e, role: $r) {
    __typename ... on RoleChanged { changed } ... on InputError { code field }
    ... on PolicyChangeProposed { created proposal { id status } } } }"""


def rule(role: str, category: str, effect: str, **fields: str) -> dict[str, str]:
    values = {"action": "read", "purpose": "*", "condition": "*", **fields}
    return {"role": role, "category": category, **values, "effect": effect}


ADMIN_CONTACT_DENY = rule("admin", "contact.*", "deny", action="*")
AUDITOR_CONTACT_DENY = rule("auditor", "contact.*", "deny", action="*")


async def customer_with_open_case() -> Customer:
    customer = await stored_customer(1, at=T0)
    await SupportCase.create(customer=customer, subject="Ring", message="Where?", created_at=T0)
    return customer


async def reads_nothing(gql: GQL, token: str, customer: Customer) -> None:
    """A real read of email and phone: both null, each FORBIDDEN for VALUE_BLIND_ROLE."""
    for purpose in ("SUPPORT", "LEGAL"):
        body = await gql(READ, {"id": str(customer.id), "p": purpose}, token=token)
        assert body["data"]["customer"] == {"email": None, "phone": None}, body
        errors = {(e["extensions"]["code"], e["extensions"]["reason"]) for e in body["errors"]}
        assert errors == {("FORBIDDEN", "VALUE_BLIND_ROLE")}, body["errors"]


async def refusals() -> list[tuple[str, str]]:
    rows = AuditEvent.filter(event="admin", decision="deny").order_by("id")
    return [(r.operation, r.reason) for r in await rows]


def text(r: dict[str, str]) -> str:
    return ", ".join(["p", *r.values()])


def refused(result: dict[str, Any], code: str) -> bool:
    return (result["__typename"], result["code"]) == ("InputError", code)


async def test_the_four_call_escalation_is_refused_and_the_admin_still_reads_nothing(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given an admin, a privacy officer and a customer with an open case
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    await signed_in_employee(gql, services, "privacy_officer", name="po")
    customer = await customer_with_open_case()
    before = await stored()
    # when the admin removes their own contact deny and allows themself contact data,
    # support messages and consents
    calls = [
        (REMOVE, ADMIN_CONTACT_DENY, "removePolicyRule", "remove"),
        (ADD, rule("admin", "contact.*", "allow", purpose="support"), "addPolicyRule", "add"),
        (ADD, rule("admin", "support.cases", "allow"), "addPolicyRule", "add"),
        (ADD, rule("admin", "consent.history", "allow", purpose="legal"), "addPolicyRule", "add"),
    ]
    results = [(await gql(q, {"i": i}, token=admin))["data"][op] for q, i, op, _ in calls]
    # then each is refused with a typed error, not made a proposal: they are rules of the
    # admin's own role (and would let a value-blind role read)
    code = "SEPARATION_OF_DUTIES"
    assert all(refused(r, code) for r in results), results
    # and nothing was persisted or proposed, each refusal is logged, the admin reads nothing
    assert await stored() == before
    assert not await PolicyProposal.exists()
    assert await refusals() == [(op, f"{code}: {verb} {text(i)}") for _, i, op, verb in calls]
    assert {e.actor_id for e in await AuditEvent.filter(event="admin")} == {admin_id}
    await reads_nothing(gql, admin, customer)


@pytest.mark.parametrize(
    ("verb", "change", "code"),
    [
        ("add", rule("admin", "*", "allow"), "SEPARATION_OF_DUTIES"),  # every category
        ("add", rule("admin", "support.cases", "allow", action="*"), "SEPARATION_OF_DUTIES"),
        ("add", rule("admin", "contact.phone", "allow", action="write"), "SEPARATION_OF_DUTIES"),
        ("remove", rule("admin", "device.*", "deny", action="*"), "SEPARATION_OF_DUTIES"),
        ("remove", rule("admin", "behavior.*", "deny", action="*"), "SEPARATION_OF_DUTIES"),
        # staff rules apply to the admin too
        (
            "add",
            rule("staff", "consent.history", "allow", purpose="support"),
            "SEPARATION_OF_DUTIES",
        ),
        ("add", rule("staff", "*", "allow", condition="open_case"), "SEPARATION_OF_DUTIES"),
        ("add", rule("staff", "support.cases", "deny"), "SEPARATION_OF_DUTIES"),  # applies to me
        # rules of the other value-blind role: refused at once, as it would see a value
        ("add", rule("auditor", "*", "allow"), "VALUE_BLIND_ROLE"),
        ("add", rule("auditor", "consent.*", "allow", action="read_masked"), "VALUE_BLIND_ROLE"),
        ("add", rule("auditor", "rights.requests", "allow", action="export"), "VALUE_BLIND_ROLE"),
        ("add", rule("auditor", "*", "allow", action="disclose"), "VALUE_BLIND_ROLE"),
        ("add", rule("auditor", "support.cases", "allow", action="erase"), "VALUE_BLIND_ROLE"),
    ],
)
async def test_variants_are_refused_change_nothing_and_are_logged(
    gql: GQL,
    services: Services,
    restore_policy: None,
    verb: str,
    change: dict[str, str],
    code: str,
) -> None:
    # given an admin and a customer with an open case
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    customer = await customer_with_open_case()
    before = await stored()
    # when the admin adds (or removes) the rule
    query, field = (ADD, "addPolicyRule") if verb == "add" else (REMOVE, "removePolicyRule")
    result = (await gql(query, {"i": change}, token=admin))["data"][field]
    # then it is refused, nothing changed or proposed, the refusal is logged, and the admin
    # reads nothing
    assert (result["__typename"], result["code"], result["field"]) == ("InputError", code, "role")
    assert await stored() == before
    assert not await PolicyProposal.exists()
    assert await refusals() == [(field, f"{code}: {verb} {text(change)}")]
    await reads_nothing(gql, admin, customer)


async def test_a_deny_removed_alone_leaves_the_value_blind_role_blind(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given an admin, a privacy officer, an auditor and a customer with an open case
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    auditor, _ = await signed_in_employee(gql, services, "auditor", name="audrey")
    customer = await customer_with_open_case()
    before = await stored()
    # when the admin removes the auditor's contact deny (no allow for auditors exists)
    body = await gql(REMOVE, {"i": AUDITOR_CONTACT_DENY}, token=admin)
    # then that is a proposal (a deny removed may widen), and nothing changed yet
    proposal = proposal_of(body, "removePolicyRule")
    assert await stored() == before
    # and the privacy officer may approve it: the stored policy still allows auditors nothing
    assert (await approved(gql, proposal["id"], officer))["appliedVersion"] == before[2] + 1
    after = await stored()
    # but the allow that would now take effect is refused outright, and the auditor reads
    # nothing
    allow = rule("auditor", "contact.*", "allow")
    result = (await gql(ADD, {"i": allow}, token=admin))["data"]["addPolicyRule"]
    assert refused(result, "VALUE_BLIND_ROLE")
    assert await stored() == after
    await reads_nothing(gql, auditor, customer)


async def test_a_breach_in_two_proposals_is_refused_when_the_second_is_approved(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given an admin, a privacy officer, an auditor and a customer with an open case
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, officer_id = await signed_in_employee(gql, services, "privacy_officer", name="po")
    auditor, _ = await signed_in_employee(gql, services, "auditor", name="audrey")
    customer = await customer_with_open_case()
    # when the admin proposes an auditor contact allow (harmless while the deny stands) and
    # the removal of that deny (harmless while no allow exists), both pending at once
    allow = rule("auditor", "contact.*", "allow")
    first = proposal_of(await gql(ADD, {"i": allow}, token=admin), "addPolicyRule")
    second = proposal_of(
        await gql(REMOVE, {"i": AUDITOR_CONTACT_DENY}, token=admin), "removePolicyRule"
    )
    # then the privacy officer may approve either one, but not the other after it
    await approved(gql, first["id"], officer)
    applied = await stored()
    body = await gql(APPROVE, {"id": second["id"]}, token=officer)
    assert refused(body["data"]["approvePolicyProposal"], "VALUE_BLIND_ROLE")
    # and that changed nothing, left the proposal pending, is logged, and the auditor
    # reads nothing
    assert await stored() == applied
    assert (await PolicyProposal.get(id=second["id"])).status == "pending"
    denial = await AuditEvent.get(event="admin", decision="deny")
    assert (denial.operation, denial.actor_id, denial.subject_id) == (
        "approvePolicyProposal",
        officer_id,
        second["id"],
    )
    assert denial.reason.startswith("VALUE_BLIND_ROLE: Refused: auditor")
    await reads_nothing(gql, auditor, customer)


async def test_the_escalation_through_a_second_role_leaves_the_admin_reading_nothing(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given two admins, a privacy officer and a customer with an open case
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    other, _ = await signed_in_employee(gql, services, "admin", name="toor")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    customer = await customer_with_open_case()
    # when the admin widens customer care, a role they do not hold, to every contact value
    # and the privacy officer approves it (nobody who holds admin gains from it)
    care_reads = rule("customer_care", "contact.*", "allow", purpose="support")
    body = await gql(ADD, {"i": care_reads}, token=admin)
    await approved(gql, proposal_of(body, "addPolicyRule")["id"], officer)
    before = await stored()
    # and then grants themself customer care, or has the other admin grant it
    own = (await gql(GRANT, {"e": admin_id, "r": "customer_care"}, token=admin))["data"]
    colleague = (await gql(GRANT, {"e": admin_id, "r": "customer_care"}, token=other))["data"]
    # then both grants are refused (own roles; mixed duties), nothing changed or proposed,
    assert own["grantRole"] == {
        "__typename": "InputError",
        "code": "SEPARATION_OF_DUTIES",
        "field": "employeeId",
    }
    assert colleague["grantRole"] == {
        "__typename": "InputError",
        "code": "SEPARATION_OF_DUTIES",
        "field": "role",
    }
    assert await stored() == before
    assert await PolicyProposal.filter(status="pending").count() == 0
    # both refusals are logged, and the admin still reads nothing
    assert [op for op, _ in await refusals()] == ["grantRole", "grantRole"]
    await reads_nothing(gql, admin, customer)


async def test_value_blind_and_personal_data_roles_are_never_held_together(
    gql: GQL, services: Services
) -> None:
    # given two admins and a care agent
    first, first_id = await signed_in_employee(gql, services, "admin", name="root")
    second, _ = await signed_in_employee(gql, services, "admin", name="toor")
    _, care_id = await signed_in_employee(gql, services, "customer_care", name="cara")
    customer = await customer_with_open_case()
    before = await stored()
    # when the first grants themself a second role, the second grants the first customer
    # care, and the second makes the care agent an auditor
    attempts = [
        (first, first_id, "customer_care", "employeeId"),
        (second, first_id, "customer_care", "role"),
        (second, care_id, "auditor", "role"),
        (second, care_id, "admin", "role"),
    ]
    for token, employee, role, field in attempts:
        body = await gql(GRANT, {"e": employee, "r": role}, token=token)
        # then each is refused for separation of duties, with nothing changed
        assert body["data"]["grantRole"] == {
            "__typename": "InputError",
            "code": "SEPARATION_OF_DUTIES",
            "field": field,
        }
    assert await stored() == before
    assert [op for op, _ in await refusals()] == ["grantRole"] * 4
    await reads_nothing(gql, first, customer)


async def test_the_live_enforcer_is_untouched_by_a_refused_change(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given an admin, and this process's enforcer
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    authorizer = services.authorizer
    rules, version = [list(r) for r in authorizer.enforcer.get_policy()], authorizer.version
    # when a change is refused
    allow = rule("auditor", "support.cases", "allow")
    assert (await gql(ADD, {"i": allow}, token=admin))["data"]["addPolicyRule"]["code"] == (
        "VALUE_BLIND_ROLE"
    )
    # then this process's enforcer holds the same rules and version, Casbin itself
    # (under the value-blind check) still allows auditors nothing, and so does decide
    assert (authorizer.enforcer.get_policy(), authorizer.version) == (rules, version)
    assert not authorizer.enforcer.enforce("auditor", "support.cases", "read", "legal", "")
    decision = authorizer.decide(
        subject="auditor", category="support.cases", action="read", purpose="legal"
    )
    assert (decision.allowed, decision.code) == (False, "VALUE_BLIND_ROLE")
    assert not authorizer.decide(
        subject=employee_subject(admin_id),
        category="contact.email",
        action="read",
        purpose="support",
    ).allowed


async def test_narrowing_and_widening_for_other_roles_still_work(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given an admin, a privacy officer, a legal employee and a marketer
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    _, mark_id = await signed_in_employee(gql, services, "marketing", name="mark")
    version = await current_version()
    # when the admin lets legal read support cases, and denies marketing every email
    widen = rule("legal", "support.cases", "allow", purpose="legal")
    narrow = rule("marketing", "contact.email", "deny")
    proposed = await gql(ADD, {"i": widen}, token=admin)
    body = await gql(ADD, {"i": narrow}, token=admin)
    # then the deny is in force at once, the allow waits for approval
    assert body["data"]["addPolicyRule"] == {"__typename": "PolicyRuleChanged", "changed": True}
    assert await current_version() == version + 1
    decide = services.authorizer.decide
    legal = {"category": "support.cases", "action": "read", "purpose": "legal"}
    assert not decide(subject=employee_subject(ann_id), **legal).allowed
    denied = decide(
        subject=employee_subject(mark_id),
        category="contact.email",
        action="read",
        purpose="marketing.email",
        conditions=("consent:marketing.email",),
    )
    assert (denied.allowed, denied.code) == (False, "DENY_RULE")
    # and once the privacy officer approves the allow it is in force too; nothing refused
    await approved(gql, proposal_of(proposed, "addPolicyRule")["id"], officer)
    assert await current_version() == version + 2
    assert decide(subject=employee_subject(ann_id), **legal).allowed
    assert await refusals() == []


async def test_the_engine_denies_value_blind_roles_whatever_the_stored_rules_say(
    gql: GQL, services: Services, restore_policy: None
) -> None:
    # given a policy changed behind the API's back: auditors and admins allowed everything
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    auditor, _ = await signed_in_employee(gql, services, "auditor", name="audrey")
    customer = await customer_with_open_case()
    for role in ("admin", "auditor"):
        await PolicyRule.filter(v0=role, v5="deny").delete()
        await PolicyRule.create(ptype="p", v0=role, v1="*", v2="*", v3="*", v4="*", v5="allow")
    # and an employee who holds admin and customer care (created, not granted)
    both, _ = await signed_in_employee(gql, services, "admin", "customer_care", name="both")
    await services.authorizer.reload()
    # then none of them reads a value, for any purpose
    for token in (admin, auditor, both):
        await reads_nothing(gql, token, customer)
    # and the stored policy is refused every widening while it is not value-blind, but
    # not a narrowing that repairs it
    legal = rule("legal", "support.cases", "allow", purpose="legal")
    blocked = (await gql(ADD, {"i": legal}, token=admin))["data"]["addPolicyRule"]
    assert blocked["code"] == "VALUE_BLIND_ROLE"
    repair = rule("auditor", "*", "allow", action="*")
    body = await gql(REMOVE, {"i": repair}, token=admin)
    assert body["data"]["removePolicyRule"] == {"__typename": "PolicyRuleChanged", "changed": True}
    assert await PolicyRule.filter(v0="auditor", v5="allow").count() == 0
    # (the admin's own allow is for another admin: no, for nobody who holds admin)
    own = rule("admin", "*", "allow", action="*")
    body = await gql(REMOVE, {"i": own}, token=admin)
    assert body["data"]["removePolicyRule"]["code"] == "SEPARATION_OF_DUTIES"
    assert admin_id


# -- the copy check itself -------------------------------------------------------------


def seeded(*extra: tuple[str, ...], drop: tuple[str, ...] = ()) -> PolicyState:
    rules = default_rules()
    p = {tuple(r[1:]) for r in rules if r[0] == "p"} - {tuple(r.split(", ")) for r in drop}
    g = {(r[1], r[2]) for r in rules if r[0] == "g"} | {("employee:1", "admin")}
    return PolicyState(frozenset(p | set(extra)), frozenset(g))


def full_scan(state: PolicyState) -> set[tuple[str, ...]]:
    """Every request of the whole space a value-blind subject is allowed (no pruning)."""
    enforcer = copy_enforcer(state)
    return {
        (subject, str(c), str(a), str(p), s)
        for subject in ("admin", "auditor", "employee:1")
        for c in PERSONAL_DATA
        for a in VALUE_ACTIONS
        for p in PURPOSES
        for s in CONDITION_SETS
        if enforcer.enforce(subject, str(c), str(a), str(p), s)
    }


@pytest.mark.parametrize(
    "state",
    [
        seeded(),
        seeded(("admin", "contact.*", "*", "*", "*", "allow")),
        seeded(
            ("admin", "contact.*", "read", "*", "*", "allow"),
            drop=("admin, contact.*, *, *, *, deny",),
        ),
        seeded(
            ("staff", "consent.history", "export", "legal", "consent:analytics", "allow"),
            ("auditor", "consent.history", "*", "*", "open_case", "deny"),
        ),
        seeded(
            ("auditor", "*", "*", "*", "open_case", "allow"),
            ("auditor", "*", "*", "*", "self", "deny"),
        ),
    ],
)
def test_the_copy_check_agrees_with_the_whole_space(state: PolicyState) -> None:
    # given a policy; when it is checked by witnesses and by asking the whole space
    allowed = full_scan(state)
    # then a breach is found exactly when the whole space has one
    assert (first_breach(state) is None) == (not allowed), sorted(allowed)[:3]
    assert FULL_SPACE == 3200
