"""The access policy at run time: glue between GraphQL and api/access/. Admins change
rules and roles; a change that may widen access is a proposal that a privacy officer
approves or rejects; admins, privacy officers and auditors read rules, proposals (with
their what-if) and the history."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.access import proposals, service
from api.access.changes import REFUSALS, Change
from api.access.rules import Rule
from api.access.types import (
    PolicyChangeEntry,
    PolicyChangeProposed,
    PolicyProposal,
    PolicyProposalDecided,
    PolicyRule,
    PolicyRuleChanged,
    PolicyRuleInput,
    RoleChanged,
)
from api.context import Info
from api.errors import InputInvalid, NotFound, parse_id
from api.permissions import only
from api.staff.types import Employee
from api.types import InputError
from authz.registry import APPROVER_ROLES, Role
from models import Employee as EmployeeModel
from models import EmployeeRole
from models import PolicyProposal as ProposalModel

RoleChangePayload = Annotated[
    RoleChanged | PolicyChangeProposed | InputError, strawberry.union("RoleChangePayload")
]
PolicyRuleChangePayload = Annotated[
    PolicyRuleChanged | PolicyChangeProposed | InputError,
    strawberry.union("PolicyRuleChangePayload"),
]
ProposalDecisionPayload = Annotated[
    PolicyProposalDecided | InputError, strawberry.union("ProposalDecisionPayload")
]
READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.AUDITOR)


def _refused(info: Info, operation: str, exc: InputInvalid, subject: object, what: str) -> None:
    code = exc.problems[0].code
    info.context.audit_event(
        event="admin",
        operation=operation,
        subject_id=subject,
        decision="deny",
        reason=f"{code}: {what}"[:200],
    )


async def _submit(info: Info, operation: str, change: Change) -> service.Submitted | InputError:
    """Submit; log what happened (a refusal to keep duties separate as a denial)."""
    services, context = info.context.services, info.context
    subject = change.employee_id or ""
    try:
        done = await service.submit(
            change,
            by=context.subject_id,
            now=services.clock.now(),
            proposal_days=services.settings.policy_proposal_days,
        )
    except InputInvalid as exc:
        if exc.problems[0].code in REFUSALS:
            _refused(info, operation, exc, subject, change.text)
        return InputError.from_problems(exc.problems)
    if done.applied:
        await services.authorizer.reload()  # here at once; other processes follow
    if done.proposal is not None:
        reason = f"proposed {change.text}" + ("" if done.created else " (already pending)")
        context.audit_event(
            event="admin", operation=operation, subject_id=done.proposal.id, reason=reason[:200]
        )
    else:
        reason = change.text if done.applied else f"{change.text} (unchanged)"
        context.audit_event(event="admin", operation=operation, subject_id=subject, reason=reason)
    return done


def _proposed(info: Info, done: service.Submitted) -> PolicyChangeProposed | None:
    if done.proposal is None:
        return None
    now = info.context.services.clock.now()
    return PolicyChangeProposed(
        proposal=PolicyProposal.from_model(done.proposal, now=now), created=done.created
    )


async def _role(info: Info, operation: str, kind: str, employee_id: str, role: str) -> object:
    employee = parse_id(employee_id, what="employee")
    done = await _submit(info, operation, Change(kind, employee_id=employee, role=role))
    if isinstance(done, InputError):
        return done
    proposed = _proposed(info, done)
    if proposed is not None:
        return proposed
    model = await EmployeeModel.get(id=employee)
    held = await EmployeeRole.filter(employee_id=employee).values_list("role", flat=True)
    roles = sorted(str(r) for r in held)
    return RoleChanged(employee=Employee.from_model(model, roles), role=role, changed=done.applied)


async def _rule(info: Info, operation: str, kind: str, rule: Rule) -> object:
    done = await _submit(info, operation, Change(kind, rule=rule))
    if isinstance(done, InputError):
        return done
    return _proposed(info, done) or PolicyRuleChanged(
        rule=PolicyRule.from_rule(rule), changed=done.applied
    )


async def _decide(info: Info, operation: str, id: str, note: str, approve: bool) -> object:
    services, context = info.context.services, info.context
    decide = proposals.approve if approve else proposals.reject
    try:
        proposal_id = parse_id(id, what="proposal")
        row = await decide(proposal_id, by=context.subject_id, now=services.clock.now(), note=note)
    except NotFound:
        context.audit_event(
            event="admin",
            operation=operation,
            decision="deny",
            reason="NOT_FOUND: no such proposal",
        )
        raise
    except InputInvalid as exc:
        _refused(info, operation, exc, id, exc.problems[0].message)
        return InputError.from_problems(exc.problems)
    if row.applied_version is not None:
        await services.authorizer.reload()
    version = f"version={row.applied_version}: " if row.applied_version else ""
    context.audit_event(
        event="admin", operation=operation, subject_id=row.id, reason=f"{version}{row.text}"[:200]
    )
    return PolicyProposalDecided(proposal=PolicyProposal.from_model(row, now=services.clock.now()))


@strawberry.type
class AccessQuery:
    @strawberry.field(
        extensions=only(*READERS),
        description="The `p` rules of the access policy in force (admins, privacy officers, "
        "auditors).",
    )
    def policy_rules(self, info: Info) -> list[PolicyRule] | None:
        enforcer = info.context.services.authorizer.enforcer
        return [PolicyRule.from_rule(Rule(*values)) for values in enforcer.get_policy()]

    @strawberry.field(extensions=only(*READERS), description="One proposal, with its what-if.")
    async def policy_proposal(self, info: Info, id: strawberry.ID) -> PolicyProposal | None:
        now = info.context.services.clock.now()
        await proposals.expire_due(now=now)
        row = await ProposalModel.get_or_none(id=parse_id(id, what="proposal"))
        if row is None:
            raise NotFound("No such proposal.")
        return PolicyProposal.from_model(row, now=now)

    @strawberry.field(
        extensions=only(*READERS),
        description="Proposals, newest first: pending ones by default; `status` one of "
        "`pending`, `approved`, `rejected`, `expired`.",
    )
    async def policy_proposals(
        self, info: Info, status: str = proposals.PENDING, first: int = 50
    ) -> list[PolicyProposal] | None:
        now = info.context.services.clock.now()
        await proposals.expire_due(now=now)
        rows = await proposals.listed(status=status, first=first)
        return [PolicyProposal.from_model(r, now=now) for r in rows]

    @strawberry.field(
        extensions=only(*READERS),
        description="The history of the access policy, newest first: each version with who "
        "proposed and who approved it.",
    )
    async def policy_changes(self, info: Info, first: int = 50) -> list[PolicyChangeEntry] | None:
        rows = await proposals.history(first=first)
        return [PolicyChangeEntry.from_model(r) for r in rows]


@strawberry.type
class AccessMutation:
    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Grant a role (admin). A role that would allow the employee anything new "
        "is a proposal; otherwise effective at once, on every process within 2 s.",
    )
    async def grant_role(
        self, info: Info, employee_id: strawberry.ID, role: str
    ) -> RoleChangePayload | None:
        return await _role(info, "grantRole", "grant_role", employee_id, role)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Revoke a role (admin): effective at once, unless it would lift a deny "
        "rule of that role (then a proposal).",
    )
    async def revoke_role(
        self, info: Info, employee_id: strawberry.ID, role: str
    ) -> RoleChangePayload | None:
        return await _role(info, "revokeRole", "revoke_role", employee_id, role)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Add a rule (admin): a deny applies at once, an allow is a proposal.",
    )
    async def add_policy_rule(
        self, info: Info, input: PolicyRuleInput
    ) -> PolicyRuleChangePayload | None:
        return await _rule(info, "addPolicyRule", "add_rule", input.to_rule())  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Remove a rule (admin): an allow goes at once, removing a deny is a "
        "proposal; the credentials floor stays.",
    )
    async def remove_policy_rule(
        self, info: Info, input: PolicyRuleInput
    ) -> PolicyRuleChangePayload | None:
        return await _rule(info, "removePolicyRule", "remove_rule", input.to_rule())  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=only(*APPROVER_ROLES),
        description="Approve a pending proposal and apply its change (privacy officer; not "
        "its proposer, not someone it would allow anything new).",
    )
    async def approve_policy_proposal(
        self, info: Info, id: strawberry.ID, note: str = ""
    ) -> ProposalDecisionPayload | None:
        return await _decide(info, "approvePolicyProposal", id, note, approve=True)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=only(*APPROVER_ROLES),
        description="Reject a pending proposal (privacy officer): nothing changes.",
    )
    async def reject_policy_proposal(
        self, info: Info, id: strawberry.ID, note: str = ""
    ) -> ProposalDecisionPayload | None:
        return await _decide(info, "rejectPolicyProposal", id, note, approve=False)  # type: ignore[return-value]
