from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.customer import Customer


class VisitEvent(Model):
    """One event collected automatically (policy section 1) by `POST /collect`.

    `purpose` says why it is kept: `security` for the strictly necessary events (kept
    whatever the consent, with the full IP and no visitor id) or `analytics` (kept only with
    analytics consent, with the IP truncated). `visitor_digest` is an HMAC of the anonymous
    visitor id cookie, never the cookie itself."""

    id = fields.BigIntField(primary_key=True)
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="visits", null=True, on_delete=fields.CASCADE
    )
    visitor_digest = fields.CharField(max_length=64, null=True, db_index=True)
    purpose = fields.CharField(max_length=32)
    at = fields.DatetimeField()
    page = fields.CharField(max_length=512)
    action = fields.CharField(max_length=64)
    referrer = fields.CharField(max_length=512, default="")
    campaign = fields.CharField(max_length=200, default="")
    browser = fields.CharField(max_length=64, default="")
    os = fields.CharField(max_length=64, default="")
    device_type = fields.CharField(max_length=16, default="")
    language = fields.CharField(max_length=35, default="")
    ip_full = fields.CharField(max_length=45, null=True)
    ip_truncated = fields.CharField(max_length=64, null=True)

    customer_id: str | None

    class Meta:
        table = "visit_event"
        indexes = (("customer_id", "at"), ("at",))
