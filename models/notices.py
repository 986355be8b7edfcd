from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RecipientNotice(Model):
    """One recipient told of one change to a customer's data it received (GDPR Article 19):
    an erasure or rectification fulfilled, or a consent withdrawn that the recipient's
    processing relied on. Recipients and categories come from the disclosure ledger.

    Status: pending (queued, not yet delivered), notified (delivered, awaiting the
    recipient's acknowledgement), acknowledged, failed (delivery gave up), not_required
    (nothing to tell, or an officer recorded why the recipient could not be told)."""

    id = fields.UUIDField(primary_key=True)
    customer_id = fields.UUIDField(db_index=True)
    request_id = fields.UUIDField(null=True, db_index=True)
    """The rights request it belongs to (null for a withdrawn consent)."""
    trigger = fields.CharField(max_length=24)
    """erasure, rectification or consent_withdrawn."""
    purpose = fields.CharField(max_length=32, default="")
    """For a withdrawn consent: its purpose."""
    processor_id = fields.UUIDField(null=True)
    recipient = fields.CharField(max_length=200)
    """The recipient's name as the ledger records it."""
    categories: fields.Field[list[str]] = fields.JSONField(default=list)
    channel = fields.CharField(max_length=8)
    """webhook (signed POST to the processor's notice endpoint), mail (to its contact, with
    a single-use acknowledgement link) or none (not told)."""
    status = fields.CharField(max_length=16, db_index=True)
    reason = fields.TextField(default="")
    """Why not required, why it failed, or the recipient's own short answer."""
    outcome = fields.CharField(max_length=16, default="")
    """The recipient's answer when it acknowledged: done or no_record."""
    decided_by = fields.UUIDField(null=True)
    """The officer who recorded why it could not be told."""
    hidden_until = fields.DatetimeField(null=True)
    """A non-disclosure order on the disclosures it follows: the customer is not shown this
    recipient until then."""
    outbox_id = fields.BigIntField(null=True, db_index=True)
    """The outbox row of its latest sending."""
    sends = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    last_sent_at = fields.DatetimeField(null=True)
    notified_at = fields.DatetimeField(null=True)
    acknowledged_at = fields.DatetimeField(null=True)
    escalated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "recipient_notice"
        unique_together = (("request_id", "recipient"),)
