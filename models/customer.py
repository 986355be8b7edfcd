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
    """A single-use, expiring email verification token, stored only as a hash."""

    id = fields.IntField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="email_tokens", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    # HMAC of the address being verified: binds the token to that address, no PII stored.
    email_digest = fields.CharField(max_length=64)
    customer_id: str
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "email_token"
