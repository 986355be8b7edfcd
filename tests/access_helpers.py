"""GraphQL documents and steps for access-policy changes, shared by the tests of rules,
roles, proposals and their what-if."""

from __future__ import annotations

from typing import Any

from authz.adapter import current_version
from models import EmployeeRole, PolicyRule
from tests.conftest import GQL

PROPOSAL_FIELDS = """
    id kind change status proposedBy decidedBy appliedVersion employeeId role
    rule { role category action purpose condition effect }
"""
_COMMON = f"""
    __typename
    ... on PolicyChangeProposed {{ created proposal {{ {PROPOSAL_FIELDS} }} }}
    ... on InputError {{ code field message fields {{ field code }} }}
"""
ROLE_PAYLOAD = _COMMON + "... on RoleChanged { role changed employee { id roles } }"
RULE_PAYLOAD = (
    _COMMON
    + "... on PolicyRuleChanged { changed rule { role category action purpose condition effect } }"
)
GRANT = (
    f"mutation($e: ID!, $r: String!) {{ grantRole(employeeId: $e, role: $r) {{ {ROLE_PAYLOAD} }} }}"
)
REVOKE = (
    "mutation($e: ID!, $r: String!) "
    f"{{ revokeRole(employeeId: $e, role: $r) {{ {ROLE_PAYLOAD} }} }}"
)
ADD_RULE = f"mutation($i: PolicyRuleInput!) {{ addPolicyRule(input: $i) {{ {RULE_PAYLOAD} }} }}"
REMOVE_RULE = (
    f"mutation($i: PolicyRuleInput!) {{ removePolicyRule(input: $i) {{ {RULE_PAYLOAD} }} }}"
)
DECISION = f"""
    __typename
    ... on PolicyProposalDecided {{ proposal {{ {PROPOSAL_FIELDS} decisionNote }} }}
    ... on InputError {{ code field message }}
"""
APPROVE = (
    f'mutation($id: ID!, $n: String! = "") {{ approvePolicyProposal(id: $id, note: $n) '
    f"{{ {DECISION} }} }}"
)
REJECT = (
    f'mutation($id: ID!, $n: String! = "") {{ rejectPolicyProposal(id: $id, note: $n) '
    f"{{ {DECISION} }} }}"
)
PROPOSAL = f"query($id: ID!) {{ policyProposal(id: $id) {{ {PROPOSAL_FIELDS} }} }}"
IMPACT = """
query($id: ID!, $days: Int) { policyProposal(id: $id) { impact(days: $days) {
  decisionsReplayed toAllow toDeny customers
  groups { roles category action purpose toAllow toDeny customers }
} } }
"""
CHANGES = "{ policyChanges { version kind change proposedBy approvedBy proposalId } }"


def rule(
    role: str, category: str, action: str, purpose: str, condition: str, effect: str
) -> dict[str, str]:
    return {
        "role": role,
        "category": category,
        "action": action,
        "purpose": purpose,
        "condition": condition,
        "effect": effect,
    }


def proposal_of(body: dict[str, Any], field: str) -> dict[str, Any]:
    """The proposal a change answered with (fails if it was applied or refused)."""
    payload = body["data"][field]
    assert payload["__typename"] == "PolicyChangeProposed", payload
    proposal: dict[str, Any] = payload["proposal"]
    return proposal


async def approved(gql: GQL, proposal_id: str, token: str) -> dict[str, Any]:
    """Approve as `token`; the applied proposal."""
    body = await gql(APPROVE, {"id": proposal_id}, token=token)
    payload = body["data"]["approvePolicyProposal"]
    assert payload["__typename"] == "PolicyProposalDecided", body
    result: dict[str, Any] = payload["proposal"]
    return result


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


async def stored() -> tuple[Any, ...]:
    """Everything a change that is not applied leaves as it was: rules, grants, version."""
    return await rules(), await grants(), await current_version()


def forbidden(body: dict[str, Any], field: str) -> bool:
    """A FORBIDDEN error at `field`, and nothing else."""
    errors = body.get("errors") or []
    return body["data"] == {field: None} and [e["extensions"]["code"] for e in errors] == [
        "FORBIDDEN"
    ]
