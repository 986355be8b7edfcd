from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEvent(Model):
    """Append-only, hash-chained log of access decisions and security events.

    Never holds a personal-data value, password, token or raw IP: only ids, names of
    categories, purposes and operations, and the decision. `hash` is
    SHA-256(prev_hash || canonical row); `verify` walks the chain (the canonical row is
    defined in authz/audit.py)."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    request_id = fields.CharField(max_length=32, default="")
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=64, default="")
    roles = fields.CharField(max_length=200, default="")
    event = fields.CharField(max_length=16)
    operation = fields.CharField(max_length=64, default="")
    # One category, or several joined by commas (one row per set of categories decided).
    category = fields.TextField(default="")
    action = fields.CharField(max_length=16, default="")
    # Whose data: one id, or several joined by commas (one decision about a whole page
    # of customers is one row); `audit_subject` indexes each of them.
    subject_id = fields.TextField(default="")
    purpose = fields.CharField(max_length=32, default="")
    decision = fields.CharField(max_length=8)
    rule = fields.CharField(max_length=300, default="")
    reason = fields.CharField(max_length=200, default="")
    # The inputs of an access decision, for replaying it against another policy: the
    # conditions Casbin was given (sorted, comma-joined) and the policy version in force
    # (0 on other events and on rows written before these columns existed).
    conditions = fields.TextField(default="")
    policy_version = fields.BigIntField(default=0)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "audit_event"
        indexes = (("actor_id", "at"), ("at",))


class AuditSubject(Model):
    """One row per (audit row, subject): how the log is searched by whose data it is.
    Derived from `audit_event.subject_id`, which the hash covers; `verify` checks that
    the two agree, so a link cannot be dropped or altered unnoticed.

    The table's key is (event_id, subject_id), made by migration 0020 (a key of two
    columns, which Tortoise cannot declare): a link costs two index entries, that key and
    (subject_id, at), and no sequence (a page of 100 customers writes 100 links). Tortoise
    is told `event_id` is the key; nothing saves or fetches a link by it."""

    event_id = fields.BigIntField(primary_key=True, generated=False)
    subject_id = fields.CharField(max_length=64)
    at = fields.DatetimeField()

    class Meta:
        table = "audit_subject"
        indexes = (("subject_id", "at"),)
