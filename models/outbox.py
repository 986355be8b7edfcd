from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model


def new_message_id() -> str:
    """A Message-ID unique to one outbox row, drawn when the row is made (at enqueue)."""
    return f"<{uuid.uuid4().hex}.outbox@custos>"


class OutboxMessage(Model):
    """Transactional outbox: written in the transaction of the event it announces.

    The body is blanked once delivered (or dropped as expired), so tokens in it do not
    outlive delivery; a dead message keeps it until an operator requeues or purges it.
    Status: pending, sending (claimed under a lease), sent, dead (retry budget spent),
    expired (content past its validity, dropped unsent), purged (dead, content erased).
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)
    channel = fields.CharField(max_length=8, default="mail")
    """mail (SMTP), or webhook: a signed POST to `processor_id`'s notice endpoint, whose
    address and key are read, and the body signed, when it is sent."""
    processor_id = fields.UUIDField(null=True)
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
    message_id = fields.CharField(max_length=255, null=True, default=new_message_id)
    """The Message-ID header, fixed at enqueue: a copy re-sent after a crash carries the same
    one, so receivers can drop it (null on rows older than migration 0014)."""
    expires_at = fields.DatetimeField(null=True)
    """When the content stops being of use (a code past its TTL): not sent after that."""
    first_attempt_at = fields.DatetimeField(null=True)
    """When its first delivery attempt began (reset by a requeue): the retry budget counts
    from here, so a campaign message scheduled days ahead keeps its whole budget."""
    last_error = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_message"
