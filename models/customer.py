from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Customer(Model):
    """A registered customer and exactly the contact data policy section 1 names."""

    id = fields.UUIDField(primary_key=True)
    email = fields.CharField(max_length=320, unique=True)
    email_verified_at = fields.DatetimeField(null=True)
    pending_email = fields.CharField(max_length=320, null=True)
    password_hash = fields.CharField(max_length=255)
    phone = fields.CharField(max_length=20)
    address_line1 = fields.CharField(max_length=200)
    address_line2 = fields.CharField(max_length=200, default="")
    address_city = fields.CharField(max_length=100)
    address_postal_code = fields.CharField(max_length=16, default="")
    address_country = fields.CharField(max_length=2)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "customer"


class EmailToken(Model):
    """A single-use, expiring email verification token, stored only as a hash.

    Every stored token has a customer; the customer is nullable only so that a request for
    an address without an account can write a stand-in token in a savepoint it rolls back
    (the same statements as for an account: api/recovery/service.py)."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="email_tokens", null=True, on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    # HMAC of the address being verified: binds the token to that address, no PII stored.
    email_digest = fields.CharField(max_length=64)
    customer_id: str | None
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "email_token"


class PasswordResetToken(Model):
    """A single-use, short-lived password-reset link's token, stored only as a hash.

    Bound to the password it replaces (`password_digest`, an HMAC of the stored hash): a
    reset, a password change or an erasure ends every link mailed before it. The customer
    is nullable only for the stand-in a request for an address without an account writes
    and rolls back (api/recovery/service.py); every stored token has one."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="password_reset_tokens", null=True, on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    password_digest = fields.CharField(max_length=64)
    customer_id: str | None
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "password_reset_token"
