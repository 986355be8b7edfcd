"""Employees: creation (CLI), sign-in, deactivation (domain code)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from tortoise.transactions import in_transaction

from api.customers import validation as v
from api.errors import FieldProblem, InputInvalid, NotFound
from api.security.authn import authenticate
from api.security.sessions import IssuedSession
from api.services import Services
from authz import separation
from authz.adapter import bump_version
from authz.audit import AuditTrail
from authz.registry import Role
from models import Employee, EmployeeRole


async def create_employee(
    *, services: Services, email: str, name: str, roles: list[str], password: str
) -> Employee:
    p = v.Problems()
    clean_email = v.email(email, p)
    clean_name = name.strip()
    if not clean_name or len(clean_name) > 200:
        p.add("name", "A name of 1 to 200 characters is required.")
    for i, role in enumerate(roles):
        if role not in Role.__members__.values():
            p.add(f"roles[{i}]", f"Unknown role; known: {', '.join(r.value for r in Role)}.")
    if separation.mixes_duties(roles):
        message = "Admins and auditors hold no role that reads personal data."
        p.add("roles", message, "SEPARATION_OF_DUTIES")
    v.password(password, p)
    p.raise_if_any()
    if await Employee.filter(email=clean_email).exists():
        raise InputInvalid([FieldProblem("email", "VALIDATION", "An employee has this email.")])
    password_hash = await services.passwords.hash(password)
    now = services.clock.now()
    async with in_transaction() as conn:
        employee = await Employee.create(
            email=clean_email,
            name=clean_name,
            password_hash=password_hash,
            created_at=now,
            using_db=conn,
        )
        await EmployeeRole.bulk_create(
            [EmployeeRole(employee_id=employee.id, role=r, granted_at=now) for r in set(roles)],
            using_db=conn,
        )
        await bump_version()  # running processes learn the new grants (authz/watcher.py)
    await services.policy_changed()
    return employee


@dataclass(frozen=True, slots=True)
class StaffSignIn:
    employee: Employee
    session: IssuedSession


async def login_employee(
    *, services: Services, email: str, password: str, ip: str | None, trail: AuditTrail | None
) -> StaffSignIn:
    """An inactive employee is answered exactly like an unknown one."""
    employee = await authenticate(
        services=services,
        model=Employee,
        email=email,
        password=password,
        ip=ip,
        operation="staffLogin",
        trail=trail,
        active=True,
    )
    # When an admin last saw this account in use (the `employees` list): one UPDATE, set
    # only once the password matched.
    employee.last_sign_in_at = services.clock.now()
    await Employee.filter(id=employee.id).update(last_sign_in_at=employee.last_sign_in_at)
    session = await services.sessions.issue(employee_id=employee.id)
    return StaffSignIn(employee, session)


async def deactivate_employee(*, services: Services, employee_id: UUID) -> tuple[Employee, int]:
    """Deactivate and revoke every session at once; returns (employee, sessions revoked)."""
    async with in_transaction() as conn:
        employee = await Employee.filter(id=employee_id).using_db(conn).first()
        if employee is None:
            raise NotFound("No such employee.")
        employee.active = False
        employee.deactivated_at = services.clock.now()
        await employee.save(using_db=conn, update_fields=["active", "deactivated_at"])
        revoked = await services.sessions.revoke_all(employee_id=employee.id, using_db=conn)
        await bump_version()  # an inactive employee's grants leave every enforcer
    await services.policy_changed()
    return employee, revoked


async def employee_roles(*, employee_id: UUID) -> list[str]:
    roles = await EmployeeRole.filter(employee_id=employee_id).order_by("role")
    return [r.role for r in roles]
