from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OutboxMessage(Model):
    """Transactional outbox: written in the transaction of the event it announces.

    The body is blanked once delivered, so tokens in it do not outlive delivery.
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)
    customer_id = fields.UUIDField(null=True, db_index=True)
    recipient = fields.CharField(max_length=320)
    subject = fields.CharField(max_length=200)
    body_text = fields.TextField()
    body_html = fields.TextField(default="")
    campaign_id = fields.UUIDField(null=True, db_index=True)
    headers: fields.Field[dict[str, str]] = fields.JSONField(default=dict)
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    attempts = fields.IntField(default=0)
    claimed_by = fields.CharField(max_length=32, null=True)
    """The sender round that holds the row's lease (a random id per round)."""
    next_attempt_at = fields.DatetimeField()
    last_error = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_message"
