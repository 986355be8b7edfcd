from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Campaign(Model):
    """A marketing email (policy sections 2 and 5.2). Sending queues one message per
    customer who may receive marketing email at that moment, batch by batch: `cursor` is
    the last customer id considered, moved with each committed batch."""

    id = fields.UUIDField(primary_key=True)
    subject = fields.CharField(max_length=200)
    body_text = fields.TextField()
    body_html = fields.TextField(default="")
    status = fields.CharField(max_length=16, default="draft", db_index=True)
    """draft, sending (batches being queued) or sent (every recipient queued)."""
    created_by = fields.UUIDField()
    created_at = fields.DatetimeField()
    sent_by = fields.UUIDField(null=True)
    send_started_at = fields.DatetimeField(null=True)
    queued_at = fields.DatetimeField(null=True)
    cursor = fields.UUIDField(null=True)
    recipients = fields.IntField(default=0)
    skipped = fields.IntField(default=0)
    """Customers considered who may not receive it (no consent, or unverified address)."""

    class Meta:
        table = "campaign"
