from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Employee(Model):
    id = fields.UUIDField(primary_key=True)
    email = fields.CharField(max_length=320, unique=True)
    name = fields.CharField(max_length=200)
    password_hash = fields.CharField(max_length=255)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    deactivated_at = fields.DatetimeField(null=True)
    # Set by each successful staff sign-in (api/staff/service.py); shown to admins.
    last_sign_in_at = fields.DatetimeField(null=True)

    roles: fields.ReverseRelation[EmployeeRole]

    class Meta:
        table = "employee"


class EmployeeRole(Model):
    id = fields.IntField(primary_key=True)
    employee: fields.ForeignKeyRelation[Employee] = fields.ForeignKeyField(
        "models.Employee", related_name="roles", on_delete=fields.CASCADE
    )
    role = fields.CharField(max_length=32)
    granted_at = fields.DatetimeField()

    employee_id: str

    class Meta:
        table = "employee_role"
        unique_together = (("employee", "role"),)
