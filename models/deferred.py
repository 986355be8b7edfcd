from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class DeferredIntake(Model):
    """An anonymous request naming an email address, waiting for the intake worker.

    The request path writes exactly one row whether or not the address has an account, so
    neither its answer nor its work tells who is a customer; the worker looks the address
    up later and deletes the row in the transaction that handles it. A row lives seconds:
    it holds the address and what the requester wrote, nothing longer than needed."""

    id = fields.BigIntField(primary_key=True)
    operation = fields.CharField(max_length=32)
    """What to do with the address (`rights_by_email`)."""
    address = fields.CharField(max_length=320)
    """Normalised as registration stores it (`account_key`)."""
    data: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    attempts = fields.IntField(default=0)
    claimed_by = fields.CharField(max_length=32, null=True)
    """The worker round that holds the row's lease (a random id per round)."""
    due_at = fields.DatetimeField(db_index=True)
    """Due while passed; claiming moves it a lease ahead, so a dead worker's row comes back."""
    created_at = fields.DatetimeField()

    class Meta:
        table = "deferred_intake"
