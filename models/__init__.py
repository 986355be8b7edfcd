"""Tortoise models: one module a feature, all re-exported here for model discovery."""

from models.consent import ConsentRecord
from models.customer import Customer, EmailToken
from models.employee import Employee, EmployeeRole
from models.outbox import OutboxMessage
from models.session import LoginFailure, Session

__all__ = [
    "ConsentRecord",
    "Customer",
    "EmailToken",
    "Employee",
    "EmployeeRole",
    "LoginFailure",
    "OutboxMessage",
    "Session",
]
