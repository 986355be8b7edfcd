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


class CurrentConsent(Model):
    """The latest consent record of each customer and purpose, kept by triggers.

    What staff reads decide on: one indexed row a purpose instead of a search of the
    history. Kept by triggers on `consent_record` (migration 0021), so every writer is covered,
    whatever its path: an insert replaces the row when it is later (by time, then id), a
    delete or a change of a record's key columns recomputes the row from the history. The
    table's key is (customer_id, purpose), which Tortoise cannot declare; Tortoise is told
    `customer_id` is the key, and nothing saves or fetches a row by it. Nothing in the code
    writes this table."""

    customer_id = fields.UUIDField(primary_key=True)
    purpose = fields.CharField(max_length=32)
    granted = fields.BooleanField()
    at = fields.DatetimeField()
    record_id = fields.BigIntField()

    class Meta:
        table = "consent_current"
