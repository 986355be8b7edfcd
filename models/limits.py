from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RateCount(Model):
    """How many times one rate-limited key was hit in one fixed window (see
    api/security/mail_limits.py). One row a key and window, incremented by an atomic
    upsert, so every process sharing the database counts together. Keys are HMACs: no
    address or IP is stored."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=16)
    key = fields.CharField(max_length=64)
    bucket = fields.BigIntField()
    """The window's number: Unix time divided by the window's length."""
    hits = fields.IntField(default=0)

    class Meta:
        table = "rate_count"
        unique_together = (("scope", "key", "bucket"),)
