from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Processor(Model):
    """A service provider we share personal data with (policy section 3A), only for its
    allowed purposes and data categories, and only while its contract is active."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    contact = fields.CharField(max_length=320)
    """The provider's business contact (its privacy or data-protection desk)."""
    country = fields.CharField(max_length=2)
    contract_reference = fields.CharField(max_length=200)
    purposes: fields.Field[list[str]] = fields.JSONField(default=list)
    categories: fields.Field[list[str]] = fields.JSONField(default=list)
    active_from = fields.DatetimeField()
    active_to = fields.DatetimeField(null=True)
    notice_url = fields.CharField(max_length=500, default="")
    """Where it receives signed notices of erasures, rectifications and withdrawn consents
    (blank: they go by mail to `contact`)."""
    notice_secret = fields.CharField(max_length=64, default="")
    """The HMAC-SHA256 key that signs notices to it and its acknowledgements to us: shown
    to legal once, when issued; never logged or returned again."""
    created_by = fields.UUIDField()
    created_at = fields.DatetimeField()
    updated_by = fields.UUIDField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "processor"


class Disclosure(Model):
    """One disclosure of one customer's data to one recipient (policy section 3): a share
    with a processor or a disclosure legal recorded. Append-only and hash-chained like the
    audit log: `hash` = SHA-256(prev_hash || canonical row), where the row is every field
    but id, `note` and the hashes. The note, legal's free text, is the one thing erasure
    blanks (on PostgreSQL a trigger refuses every other UPDATE and every DELETE)."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    customer_id = fields.UUIDField()
    recipient = fields.CharField(max_length=200)
    processor_id = fields.UUIDField(null=True)
    categories: fields.Field[list[str]] = fields.JSONField(default=list)
    purpose = fields.CharField(max_length=32, default="")
    legal_basis = fields.CharField(max_length=32)
    reference = fields.CharField(max_length=200, default="")
    nondisclosure_until = fields.DatetimeField(null=True)
    """Until then the customer is not told (a court or regulator forbids it)."""
    recorded_by = fields.UUIDField()
    note = fields.TextField(default="")
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "disclosure"
        indexes = (("customer_id", "at"), ("at",))
