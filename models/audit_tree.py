from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditLeaf(Model):
    """One row of the decision log as a leaf of its Merkle tree (docs/AUDIT_LOG.md).

    `idx` is the leaf's position (0, 1, 2... in the order of the chain, with no gap, unlike
    row ids); `salt` is the row's random salt for the leaf's commitments to who acted and
    whose data it was; `hash` is SHA-256(0x00 || leaf), hex."""

    idx = fields.BigIntField(primary_key=True, generated=False)
    event_id = fields.BigIntField(unique=True)
    salt = fields.CharField(max_length=32)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_leaf"


class AuditNode(Model):
    """An interior node of the tree over a perfect subtree: 2^level leaves starting at
    index * 2^level. `id` is level * 2^48 + index (one key, one index); only complete
    subtrees are stored, so a stored node never changes."""

    id = fields.BigIntField(primary_key=True, generated=False)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_node"


class AuditCheckpoint(Model):
    """A checkpoint the log signed: a C2SP signed note over (origin, size, root), kept so
    that `auditCheckpoints` can list them and the log never signs one inconsistent with
    an earlier one. The signing key's private part is never in the database."""

    id = fields.BigIntField(primary_key=True)
    size = fields.BigIntField()
    root = fields.CharField(max_length=64)
    signed_at = fields.DatetimeField()
    key_id = fields.CharField(max_length=8)
    note = fields.TextField()

    class Meta:
        table = "audit_checkpoint"
        indexes = (("size",),)


class AuditLogKey(Model):
    """A public key that signs the log's checkpoints, with the period it signed in
    (`retired_at` null while it is the key in use). Published at
    /.well-known/custos/log-keys; the private key lives in a file outside the database."""

    key_id = fields.CharField(max_length=8, primary_key=True)
    name = fields.CharField(max_length=200)
    vkey = fields.CharField(max_length=300)
    created_at = fields.DatetimeField()
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "audit_log_key"
