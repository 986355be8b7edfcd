from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from models.customer import Customer


class RightsRequest(Model):
    """A data-subject request (policy section 5.1): access, rectification or erasure.

    Kept after it is completed, as the proof of what was asked and answered; an erasure
    blanks its free text (`details`, `changes`) but keeps kinds, dates and outcomes."""

    id = fields.UUIDField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="rights_requests", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)
    status = fields.CharField(max_length=16, db_index=True)
    channel = fields.CharField(max_length=16)
    """`account` (signed in) or `email` (submitted by address)."""
    details = fields.TextField(default="")
    changes: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    """Rectification: the changes the customer proposes."""
    before: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    after: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    outcome: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    """Per category what was done (erasure: erased or kept and why; access: the export)."""
    code_digest = fields.CharField(max_length=64, null=True)
    code_expires_at = fields.DatetimeField(null=True)
    code_attempts = fields.IntField(default=0)
    submitted_at = fields.DatetimeField()
    received_at = fields.DatetimeField(null=True)
    """When the identity was verified."""
    jurisdiction = fields.CharField(max_length=16, default="GDPR")
    """The law whose deadline the request follows (api/rights/deadlines.py)."""
    clock: fields.Field[list[dict[str, Any]]] = fields.JSONField(default=list)
    """The deadline clock's events: started, paused, resumed, extended (with when and why)."""
    due_at = fields.DatetimeField(null=True, db_index=True)
    """What the clock gives; null while it stands (identity not yet verified, GDPR)."""
    extended_at = fields.DatetimeField(null=True)
    extension_reason = fields.TextField(default="")
    decided_at = fields.DatetimeField(null=True)
    decided_by = fields.UUIDField(null=True)
    decision_reason = fields.TextField(default="")
    completed_at = fields.DatetimeField(null=True)

    customer_id: str

    class Meta:
        table = "rights_request"
        indexes = (("customer_id", "submitted_at"),)


class RightsTransition(Model):
    """Every change of a request's status: who, when, why."""

    id = fields.BigIntField(primary_key=True)
    request: fields.ForeignKeyRelation[RightsRequest] = fields.ForeignKeyField(
        "models.RightsRequest", related_name="transitions", on_delete=fields.CASCADE
    )
    from_status = fields.CharField(max_length=16)
    to_status = fields.CharField(max_length=16)
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=64, default="")
    reason = fields.TextField(default="")
    at = fields.DatetimeField()

    request_id: str

    class Meta:
        table = "rights_transition"


class DataExport(Model):
    """An access request's answer, downloadable once through an expiring link."""

    id = fields.BigIntField(primary_key=True)
    request: fields.ForeignKeyRelation[RightsRequest] = fields.ForeignKeyField(
        "models.RightsRequest", related_name="exports", on_delete=fields.CASCADE
    )
    customer_id = fields.UUIDField(db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    document = fields.TextField()
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    request_id: str

    class Meta:
        table = "data_export"


class LegalHold(Model):
    """A legal obligation to keep some of a customer's data: erasure and retention purges
    keep the held categories until the hold is released or expires."""

    id = fields.UUIDField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="legal_holds", on_delete=fields.CASCADE
    )
    categories: fields.Field[list[str]] = fields.JSONField(default=list)
    reason = fields.TextField()
    reference = fields.CharField(max_length=200)
    expires_at = fields.DatetimeField(null=True)
    placed_by = fields.UUIDField()
    placed_at = fields.DatetimeField()
    released_by = fields.UUIDField(null=True)
    released_at = fields.DatetimeField(null=True)

    customer_id: str

    class Meta:
        table = "legal_hold"
