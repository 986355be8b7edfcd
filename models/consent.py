from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.customer import Customer


class ConsentRecord(Model):
    """Append-only consent history: the current state is the latest record per purpose."""

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="consents", on_delete=fields.CASCADE
    )
    purpose = fields.CharField(max_length=32)
    granted = fields.BooleanField()
    source = fields.CharField(max_length=32)
    policy_version = fields.CharField(max_length=32, null=True)
    ip_truncated = fields.CharField(max_length=64, null=True)
    user_agent = fields.CharField(max_length=300, null=True)
    at = fields.DatetimeField()

    class Meta:
        table = "consent_record"
        indexes = (("customer_id", "purpose", "at"),)
