from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RetentionRule(Model):
    """How long one data category is kept after an anchor event (policy section 6), e.g.
    behavior.browsing, 13 months after the event. `period` is an ISO 8601 duration of
    years, months and days (P13M, P30D, P2Y); `months` and `days` are its parsed form.
    Legal manages the rules; `custos migrate` seeds the defaults (docs/API_STAFF.md, "Legal")."""

    id = fields.IntField(primary_key=True)
    category = fields.CharField(max_length=32)
    anchor = fields.CharField(max_length=32)
    period = fields.CharField(max_length=32)
    months = fields.IntField()
    days = fields.IntField()
    updated_by = fields.UUIDField(null=True)
    """Null for a seeded default."""
    updated_at = fields.DatetimeField()

    class Meta:
        table = "retention_rule"
        unique_together = (("category", "anchor"),)
