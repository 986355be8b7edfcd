"""Four eyes on wider access (issue 14, point 2): a change that may widen access to
personal data is a proposal that changes nothing until a privacy officer who neither
proposed it nor gains from it approves it; a narrowing change applies at once. Every
refusal changes nothing and is logged."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.access import proposals
from api.clock import FakeClock
from api.errors import InputInvalid
from api.services import Services
from api.staff.service import create_employee
from authz.adapter import current_version
from models import AuditEvent, Employee, EmployeeRole, PolicyChange, PolicyProposal, PolicyRule
from tests.access_helpers import (
    ADD_RULE,
    APPROVE,
    CHANGES,
    GRANT,
    PROPOSAL,
    REJECT,
    REMOVE_RULE,
    REVOKE,
    approved,
    forbidden,
    proposal_of,
    rule,
    stored,
)
from tests.conftest import GQL, PASSWORD, STAFF_LOGIN, signed_in_employee

QUEUE = "{ supportQueue { id } }"
LEGAL_READS_CASES = rule("legal", "support.cases", "read", "support", "*", "allow")
pytestmark = pytest.mark.usefixtures("restore_policy")


async def test_a_widening_grant_changes_nothing_until_a_privacy_officer_approves_it(
    gql: GQL, services: Services
) -> None:
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    officer, officer_id = await signed_in_employee(gql, services, "privacy_officer", name="po")
    ann, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    before = await stored()
    # when the admin grants customer care, it is a proposal and nothing changed
    proposal = proposal_of(
        await gql(GRANT, {"e": ann_id, "r": "customer_care"}, token=admin), "grantRole"
    )
    assert proposal["status"] == "pending"
    assert proposal["change"] == f"grant customer_care to employee:{ann_id}"
    assert await stored() == before
    assert forbidden(await gql(QUEUE, token=ann), "supportQueue")
    # when the privacy officer approves it, it applies at once
    done = await approved(gql, proposal["id"], officer)
    assert (done["status"], done["decidedBy"]) == ("approved", officer_id)
    assert done["appliedVersion"] == before[2] + 1 == await current_version()
    assert (await gql(QUEUE, token=ann)) == {"data": {"supportQueue": []}}
    # and the history says who proposed and who approved
    history = (await gql(CHANGES, token=officer))["data"]["policyChanges"]
    assert history[0] == {
        "version": before[2] + 1,
        "kind": "grant_role",
        "change": f"grant customer_care to employee:{ann_id}",
        "proposedBy": admin_id,
        "approvedBy": officer_id,
        "proposalId": proposal["id"],
    }
    events = (
        await AuditEvent.filter(event="admin")
        .order_by("id")
        .values_list("operation", "actor_id", "decision")
    )
    assert events == [
        ("grantRole", admin_id, "allow"),
        ("approvePolicyProposal", officer_id, "allow"),
    ]


async def test_a_narrowing_change_applies_at_once(gql: GQL, services: Services) -> None:
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    care, care_id = await signed_in_employee(gql, services, "customer_care", name="cc")
    assert (await gql(QUEUE, token=care)) == {"data": {"supportQueue": []}}
    version = await current_version()
    body = await gql(REVOKE, {"e": care_id, "r": "customer_care"}, token=admin)
    assert body["data"]["revokeRole"]["__typename"] == "RoleChanged"
    assert forbidden(await gql(QUEUE, token=care), "supportQueue")
    deny = rule("legal", "support.cases", "*", "*", "*", "deny")
    body = await gql(ADD_RULE, {"i": deny}, token=admin)
    assert body["data"]["addPolicyRule"]["__typename"] == "PolicyRuleChanged"
    assert await current_version() == version + 2
    history = (
        await PolicyChange.all()
        .order_by("version")
        .values_list("kind", "proposed_by", "approved_by")
    )
    assert [(k, str(p), a) for k, p, a in history] == [
        ("revoke_role", admin_id, None),
        ("add_rule", admin_id, None),
    ]
    assert not await PolicyProposal.exists()


async def _sign_in_again(gql: GQL, name: str) -> str:
    """A new session (a week on, the first one has ended)."""
    body = await gql(STAFF_LOGIN, {"email": f"{name}@staff.example.com", "password": PASSWORD})
    token: str = body["data"]["staffLogin"]["token"]
    return token


async def _refusals(operation: str) -> list[tuple[str, str]]:
    rows = AuditEvent.filter(operation=operation, decision="deny").order_by("id")
    return [
        (str(actor), str(reason)) for actor, reason in await rows.values_list("actor_id", "reason")
    ]


async def _proposed(gql: GQL, admin: str, change: dict[str, str] | None = None) -> dict[str, Any]:
    body = await gql(ADD_RULE, {"i": change or LEGAL_READS_CASES}, token=admin)
    return proposal_of(body, "addPolicyRule")


async def test_only_admins_propose_and_only_privacy_officers_decide(
    gql: GQL, services: Services
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    other_admin, other_id = await signed_in_employee(gql, services, "admin", name="root2")
    legal, legal_id = await signed_in_employee(gql, services, "legal", name="ann")
    proposal = await _proposed(gql, admin)
    before = await stored()
    # a legal employee proposing, an admin approving or rejecting: refused, each logged
    assert forbidden(await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=legal), "addPolicyRule")
    for token, mutation, field in (
        (other_admin, APPROVE, "approvePolicyProposal"),
        (other_admin, REJECT, "rejectPolicyProposal"),
        (legal, APPROVE, "approvePolicyProposal"),
    ):
        body = await gql(mutation, {"id": proposal["id"]}, token=token)
        assert forbidden(body, field)
        assert body["errors"][0]["extensions"]["reason"] == "ROLE_REQUIRED"
    assert await stored() == before
    assert (await gql(PROPOSAL, {"id": proposal["id"]}, token=admin))["data"]["policyProposal"][
        "status"
    ] == "pending"
    denied = (
        await AuditEvent.filter(decision="deny").order_by("id").values_list("actor_id", "operation")
    )
    assert [(str(a), o) for a, o in denied] == [
        (legal_id, "addPolicyRule"),
        (other_id, "approvePolicyProposal"),
        (other_id, "rejectPolicyProposal"),
        (legal_id, "approvePolicyProposal"),
    ]


async def test_a_second_approval_an_approval_after_rejection_and_unknown_ids_are_refused(
    gql: GQL, services: Services
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, officer_id = await signed_in_employee(gql, services, "privacy_officer", name="po")
    second, second_id = await signed_in_employee(gql, services, "privacy_officer", name="po2")
    first = await _proposed(gql, admin)
    await approved(gql, first["id"], officer)
    after_first = await stored()
    body = await gql(APPROVE, {"id": first["id"]}, token=second)
    assert body["data"]["approvePolicyProposal"]["code"] == "ALREADY_DECIDED"
    other = await _proposed(
        gql, admin, rule("legal", "rights.requests", "read", "legal", "*", "allow")
    )
    body = await gql(REJECT, {"id": other["id"], "n": "not needed"}, token=officer)
    assert body["data"]["rejectPolicyProposal"]["proposal"]["status"] == "rejected"
    body = await gql(APPROVE, {"id": other["id"]}, token=second)
    assert body["data"]["approvePolicyProposal"]["code"] == "ALREADY_DECIDED"
    for unknown in (str(uuid4()), "not-an-id"):
        body = await gql(APPROVE, {"id": unknown}, token=second)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    body = await gql(APPROVE, {"id": "\x00" * 40}, token=second)
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION", body
    # nothing changed after the first approval; every refusal is logged
    assert await stored() == after_first
    refused = await _refusals("approvePolicyProposal")
    assert [actor for actor, _ in refused] == [second_id] * 4
    assert [reason.split(":")[0] for _, reason in refused] == [
        "ALREADY_DECIDED",
        "ALREADY_DECIDED",
        "NOT_FOUND",
        "NOT_FOUND",
    ]
    assert officer_id != second_id


async def test_an_expired_proposal_cannot_be_approved_and_its_expiry_is_logged_once(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    proposal = await _proposed(gql, admin)
    before = await stored()
    clock.advance(days=services.settings.policy_proposal_days, seconds=1)
    officer, admin = await _sign_in_again(gql, "po"), await _sign_in_again(gql, "root")
    body = await gql(APPROVE, {"id": proposal["id"]}, token=officer)
    assert body["data"]["approvePolicyProposal"]["code"] == "PROPOSAL_EXPIRED"
    body = await gql(APPROVE, {"id": proposal["id"]}, token=officer)
    assert body["data"]["approvePolicyProposal"]["code"] == "PROPOSAL_EXPIRED"
    assert await stored() == before
    shown = await gql(PROPOSAL, {"id": proposal["id"]}, token=officer)
    assert shown["data"]["policyProposal"]["status"] == "expired"
    expired = await AuditEvent.filter(operation="expirePolicyProposal").values_list(
        "actor_kind", "subject_id"
    )
    assert expired == [("system", proposal["id"])]
    assert len(await _refusals("approvePolicyProposal")) == 2
    # proposing the change again opens a new proposal
    again = await _proposed(gql, admin)
    assert again["id"] != proposal["id"]


async def test_the_same_change_proposed_ten_times_at_once_is_one_proposal(
    gql: GQL, services: Services
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    bodies = await asyncio.gather(
        *(gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin) for _ in range(10))
    )
    payloads = [b["data"]["addPolicyRule"] for b in bodies]
    assert {p["proposal"]["id"] for p in payloads} == {payloads[0]["proposal"]["id"]}
    assert sorted(p["created"] for p in payloads) == [False] * 9 + [True]
    assert await PolicyProposal.all().count() == 1


async def test_ten_approvals_at_once_apply_the_change_once(gql: GQL, services: Services) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officers = [
        (await signed_in_employee(gql, services, "privacy_officer", name=f"po{i}"))[0]
        for i in range(2)
    ]
    proposal = await _proposed(gql, admin)
    version = await current_version()
    bodies = await asyncio.gather(
        *(gql(APPROVE, {"id": proposal["id"]}, token=officers[i % 2]) for i in range(10))
    )
    kinds = sorted(b["data"]["approvePolicyProposal"]["__typename"] for b in bodies)
    assert kinds == ["InputError"] * 9 + ["PolicyProposalDecided"]
    assert await current_version() == version + 1
    assert await PolicyChange.filter(proposal_id=proposal["id"]).count() == 1
    assert await PolicyRule.filter(v0="legal", v1="support.cases", v5="allow").count() == 1


async def test_the_approver_never_proposed_it_nor_gains_from_it(
    gql: GQL, services: Services
) -> None:
    admin, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    officer, officer_id = await signed_in_employee(gql, services, "privacy_officer", name="po")
    # a privacy officer who also works in legal: a rule for legal would be their own
    both, _ = await signed_in_employee(gql, services, "privacy_officer", "legal", name="pol")
    proposal = await _proposed(gql, admin)
    body = await gql(APPROVE, {"id": proposal["id"]}, token=both)
    assert body["data"]["approvePolicyProposal"]["code"] == "SEPARATION_OF_DUTIES"
    # a grant to the officer themselves
    body = await gql(GRANT, {"e": officer_id, "r": "legal"}, token=admin)
    grant = proposal_of(body, "grantRole")
    body = await gql(APPROVE, {"id": grant["id"]}, token=officer)
    assert body["data"]["approvePolicyProposal"]["code"] == "SEPARATION_OF_DUTIES"
    before = await stored()
    # and the proposer, asked at the service level: no employee holds admin (to propose)
    # and privacy officer (to approve) together
    with pytest.raises(InputInvalid) as refused:
        await proposals.approve(UUID(proposal["id"]), by=UUID(admin_id), now=services.clock.now())
    assert refused.value.problems[0].code == "SEPARATION_OF_DUTIES"
    assert await stored() == before
    assert len(await _refusals("approvePolicyProposal")) == 2
    # the other privacy officer may approve the rule
    done = await approved(gql, proposal["id"], officer)
    assert done["decidedBy"] == officer_id


async def test_approval_checks_the_policy_as_it_is_then(gql: GQL, services: Services) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    _, ann_id = await signed_in_employee(gql, services, name="ann")
    body = await gql(GRANT, {"e": ann_id, "r": "customer_care"}, token=admin)
    proposal = proposal_of(body, "grantRole")
    # meanwhile ann became an auditor (nothing new for her: applied at once)
    body = await gql(GRANT, {"e": ann_id, "r": "auditor"}, token=admin)
    assert body["data"]["grantRole"]["__typename"] == "RoleChanged"
    before = await stored()
    body = await gql(APPROVE, {"id": proposal["id"]}, token=officer)
    assert body["data"]["approvePolicyProposal"]["code"] == "SEPARATION_OF_DUTIES"
    assert await stored() == before


async def test_an_employee_who_left_since_the_proposal_is_not_granted(
    gql: GQL, services: Services
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    _, ann_id = await signed_in_employee(gql, services, "legal", name="ann")
    proposal = proposal_of(
        await gql(GRANT, {"e": ann_id, "r": "customer_care"}, token=admin), "grantRole"
    )
    await Employee.filter(id=ann_id).update(active=False)
    before = await stored()
    body = await gql(APPROVE, {"id": proposal["id"]}, token=officer)
    assert body["data"]["approvePolicyProposal"]["code"] == "VALIDATION"
    assert await stored() == before
    assert not await EmployeeRole.filter(employee_id=ann_id, role="customer_care").exists()


async def test_revoking_a_value_blind_role_that_kept_someone_blind_is_a_proposal(
    gql: GQL, services: Services
) -> None:
    # given an employee holding admin and customer care (from old data): the engine shows
    # them no value, whatever customer care's rules say
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    _, mixed_id = await signed_in_employee(gql, services, "admin", "customer_care", name="mx")
    contact = rule("customer_care", "contact.*", "read", "support", "open_case", "allow")
    body = await gql(REMOVE_RULE, {"i": contact}, token=admin)
    assert body["data"]["removePolicyRule"]["changed"] is True
    # when admin is revoked, they would read support cases: a second person decides
    before = await stored()
    body = await gql(REVOKE, {"e": mixed_id, "r": "admin"}, token=admin)
    assert proposal_of(body, "revokeRole")["change"] == f"revoke admin from employee:{mixed_id}"
    assert await stored() == before


@pytest.mark.parametrize("roles", [["admin", "legal"], ["privacy_officer", "auditor"]])
async def test_no_employee_is_created_with_mixed_duties(
    services: Services, roles: list[str]
) -> None:
    with pytest.raises(InputInvalid) as refused:
        await create_employee(
            services=services,
            email="mx@staff.example.com",
            name="M",
            roles=roles,
            password=PASSWORD,
        )
    assert [(p.field, p.code) for p in refused.value.problems] == [
        ("roles", "SEPARATION_OF_DUTIES")
    ]
    assert not await Employee.exists()
