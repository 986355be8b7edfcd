from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.customer import Customer


class PrivacyPolicy(Model):
    """A published version of the privacy policy (policy section 7). Never edited once
    published, except the progress of its notice emails (`notice_*`)."""

    id = fields.IntField(primary_key=True)
    version = fields.CharField(max_length=32, unique=True)
    effective_at = fields.DatetimeField(db_index=True)
    published_at = fields.DatetimeField()
    published_by = fields.UUIDField(null=True)
    material = fields.BooleanField()
    summary = fields.TextField()
    text = fields.TextField()
    changed_purposes: fields.Field[list[str]] = fields.JSONField(default=list)
    notice_cursor = fields.UUIDField(null=True)
    """The last customer id whose notice is queued; batches resume after it."""
    notice_done = fields.BooleanField(default=True)
    notices_queued = fields.IntField(default=0)

    class Meta:
        table = "privacy_policy"


class PolicyAcceptance(Model):
    """A customer accepted a policy version (once per version)."""

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="policy_acceptances", on_delete=fields.CASCADE
    )
    version = fields.CharField(max_length=32)
    at = fields.DatetimeField()
    ip_truncated = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=300, null=True)

    customer_id: str

    class Meta:
        table = "policy_acceptance"
        unique_together = (("customer_id", "version"),)
