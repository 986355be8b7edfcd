from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.customer import Customer
from models.employee import Employee


class Session(Model):
    """A signed-in session. The token itself is never stored, only its SHA-256."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="sessions", null=True, on_delete=fields.CASCADE
    )
    employee: fields.ForeignKeyNullableRelation[Employee] = fields.ForeignKeyField(
        "models.Employee", related_name="sessions", null=True, on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    idle_expires_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    customer_id: str | None
    employee_id: str | None

    class Meta:
        table = "session"


class LoginFailure(Model):
    """A failed sign-in, keyed by an HMAC of the account or IP (no PII), for throttling."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=16)
    key = fields.CharField(max_length=64)
    at = fields.DatetimeField()

    class Meta:
        table = "login_failure"
        indexes = (("scope", "key", "at"),)
