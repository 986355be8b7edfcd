from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.customer import Customer
from models.employee import Employee


class SupportCase(Model):
    """A customer's question or complaint (policy section 8). While a case is open,
    customer care may read that customer's contact data."""

    id = fields.UUIDField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="support_cases", on_delete=fields.CASCADE
    )
    subject = fields.CharField(max_length=200)
    message = fields.TextField()
    status = fields.CharField(max_length=16, default="open", db_index=True)
    assignee: fields.ForeignKeyNullableRelation[Employee] = fields.ForeignKeyField(
        "models.Employee", related_name="support_cases", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    closed_at = fields.DatetimeField(null=True)

    customer_id: str
    assignee_id: str | None

    class Meta:
        table = "support_case"
        indexes = (("customer_id", "status"),)
