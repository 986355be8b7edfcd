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


class AuditPosting(Model):
    """Per subject, the ids of the log rows naming it: the log searched by whose data.

    A posting list, written when rows join the log's tree, one row per
    (subject, block of 1,024 row ids, batch joining the tree): a staff page of 100
    customers adds its id to 100 lists rather than 100 rows to two indexes. Derived from
    `audit_event.subject_id`, which the hash covers; `verify` checks that the two agree, so
    a link cannot be dropped or altered unnoticed.

    The table's key is (block, subject_id, first_id), with a unique index (subject_id,
    first_id), made by migration 0023 (Tortoise cannot declare a key of several columns);
    Tortoise is told `first_id` is the key, and nothing saves or fetches a list by it.
    `block` is every listed id >> 10."""

    subject_id = fields.CharField(max_length=64)
    first_id = fields.BigIntField(primary_key=True, generated=False)
    block = fields.BigIntField(db_index=True)
    first_at = fields.DatetimeField()
    last_at = fields.DatetimeField()
    event_ids = fields.TextField()  # ascending ids joined by commas

    class Meta:
        table = "audit_posting"


class AuditSubject(Model):
    """A view of audit_posting: one row per (log row, subject), read only.

    Made by migration 0023, with the times of the list each row comes from (`first_at` <=
    the row's time <= `last_at`). An id listed outside its list's block is left out."""

    event_id = fields.BigIntField(primary_key=True, generated=False)
    subject_id = fields.CharField(max_length=64)
    block = fields.BigIntField()
    first_at = fields.DatetimeField()
    last_at = fields.DatetimeField()

    class Meta:
        table = "audit_subject"
