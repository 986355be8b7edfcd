from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class PolicyRule(Model):
    """A Casbin policy rule (`p`, or a `g` between roles). Employee role grants are not
    here: they live in `employee_role` and the adapter presents them as `g` rules."""

    id = fields.IntField(primary_key=True)
    ptype = fields.CharField(max_length=8)
    v0 = fields.CharField(max_length=100, default="")
    v1 = fields.CharField(max_length=100, default="")
    v2 = fields.CharField(max_length=100, default="")
    v3 = fields.CharField(max_length=100, default="")
    v4 = fields.CharField(max_length=100, default="")
    v5 = fields.CharField(max_length=100, default="")

    class Meta:
        table = "policy_rule"


class PolicyVersion(Model):
    """One row whose counter moves with every change of rules or role grants, so that
    every process can tell its enforcer is stale (the poll behind the NOTIFY watcher)."""

    id = fields.IntField(primary_key=True)
    version = fields.BigIntField(default=0)

    class Meta:
        table = "policy_version"


class PolicyProposal(Model):
    """A change that widens access to personal data, waiting for a second person (four
    eyes): applied only when an employee with the right to approve, who is neither the
    proposer nor gains from it, approves it before `expires_at`."""

    id = fields.UUIDField(primary_key=True)
    kind = fields.CharField(max_length=16)
    """add_rule, remove_rule, grant_role or revoke_role."""
    change: fields.Field[dict[str, Any]] = fields.JSONField()
    """The rule's cells, or the employee id and role."""
    text = fields.CharField(max_length=300)
    """The change as one line (`add p, legal, support.cases, read, support, *, allow`)."""
    pending_key = fields.CharField(max_length=300, null=True, unique=True)
    """`text` while pending, null once decided: one pending proposal per change, however
    many times or at once it is proposed."""
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    proposed_by = fields.UUIDField()
    proposed_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    decided_by = fields.UUIDField(null=True)
    decided_at = fields.DatetimeField(null=True)
    decision_note = fields.CharField(max_length=500, default="")
    applied_version = fields.BigIntField(null=True)
    """The policy version the approval made."""

    class Meta:
        table = "policy_proposal"


class PolicyChange(Model):
    """The history of the access policy: one row per version moved by a rule or role
    change, with who proposed it and who approved it (null: a narrowing change, applied
    at once by its proposer)."""

    id = fields.BigIntField(primary_key=True)
    version = fields.BigIntField(unique=True)
    at = fields.DatetimeField()
    kind = fields.CharField(max_length=16)
    text = fields.CharField(max_length=300)
    proposed_by = fields.UUIDField(null=True)
    approved_by = fields.UUIDField(null=True)
    proposal_id = fields.UUIDField(null=True)

    class Meta:
        table = "policy_change"
