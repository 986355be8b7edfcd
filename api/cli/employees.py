"""Employees from the shell: `custos create-employee`, `custos deactivate-employee` and
`custos employees list` (an admin's lookup: ids, work emails, roles, whether active,
the last sign-in; never a name, password or session)."""

from __future__ import annotations

import getpass
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime

import click

from api.cli.base import Command, Group
from api.cli.output import FORMATS, write_rows
from api.cli.runner import run
from api.clock import iso
from api.errors import InputInvalid
from api.services import Services
from authz.registry import Role


def _read_password() -> str:
    """From a prompt (twice) on a terminal, else the first line of stdin: never an argument,
    which would land in the shell's history and in `ps`."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("custos: the passwords differ")
    return first


@click.command(
    "create-employee",
    cls=Command,
    example=(
        "printf '%s\\n' \"$PASSWORD\" | custos create-employee --email ann@shop.example "
        "--name 'Ann Admin' --role admin"
    ),
    env=("DATABASE_URL", "CUSTOS_ARGON2_TIME_COST"),
    short_help="create an employee; the password is read from stdin or a prompt",
)
@click.option("--email", required=True, help="the work email (signs in with it)")
@click.option("--name", required=True)
@click.option(
    "--role",
    "roles",
    required=True,
    multiple=True,
    type=click.Choice([r.value for r in Role]),
    help="repeat for several roles",
)
def create_employee_command(email: str, name: str, roles: tuple[str, ...]) -> int:
    """Create an employee with one or more roles. The password is read from a prompt on a
    terminal, else from the first line of stdin (it is never an argument)."""
    from api.staff.service import create_employee

    password = _read_password()

    async def work(services: Services) -> int:
        try:
            employee = await create_employee(
                services=services, email=email, name=name, roles=list(roles), password=password
            )
        except InputInvalid as exc:
            for p in exc.problems:
                click.echo(f"custos: {p.field}: {p.message}", err=True)
            return 2
        click.echo(f"created employee {employee.id} with role(s) {', '.join(sorted(set(roles)))}")
        return 0

    return run(work)


@click.command(
    "deactivate-employee",
    cls=Command,
    example="custos deactivate-employee --email ann@shop.example",
    short_help="deactivate and sign out an employee",
)
@click.option("--email", required=True, help="the employee's work email")
def deactivate_employee_command(email: str) -> int:
    """Deactivate an employee (who can no longer sign in) and revoke their sessions."""
    from api.staff.service import deactivate_employee
    from models import Employee

    async def work(services: Services) -> int:
        employee = await Employee.get_or_none(email=email.strip().lower())
        if employee is None:
            click.echo("custos: no such employee", err=True)
            return 2
        _, revoked = await deactivate_employee(services=services, employee_id=employee.id)
        click.echo(f"deactivated employee {employee.id}; {revoked} session(s) revoked")
        return 0

    return run(work)


@click.group(
    "employees",
    cls=Group,
    short_help="employees, for admins at the shell",
    example="custos employees list",
)
def employees() -> None:
    """Employees, for admins at the shell."""


COLUMNS = ("id", "email", "roles", "active", "last_sign_in_at")


async def employee_rows() -> AsyncIterator[dict[str, object]]:
    """Every employee by work email: id, email, roles, active and the last sign-in (None
    when never). Two statements: the employees, then all their roles."""
    from models import Employee, EmployeeRole

    people = await Employee.all().order_by("email").values(*COLUMNS[:2], *COLUMNS[3:])
    roles: dict[str, list[str]] = defaultdict(list)
    for employee_id, role in (
        await EmployeeRole.all().order_by("role").values_list("employee_id", "role")
    ):
        roles[str(employee_id)].append(str(role))
    for person in people:
        at = person["last_sign_in_at"]
        yield {
            "id": str(person["id"]),
            "email": person["email"],
            "roles": roles[str(person["id"])],
            "active": bool(person["active"]),
            "last_sign_in_at": iso(at) if isinstance(at, datetime) else None,
        }


def _table(rows: list[dict[str, object]]) -> list[str]:
    """Aligned columns with a header, for reading (jsonl and csv are for programs)."""
    header = ("id", "email", "roles", "active", "last sign-in")
    cells = [
        (
            str(r["id"]),
            str(r["email"]),
            ",".join(r["roles"]) if isinstance(r["roles"], list) else "",
            "yes" if r["active"] else "no",
            str(r["last_sign_in_at"] or "never"),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *cells]
    ]


@employees.command(
    "list",
    example="custos employees list --format csv",
    short_help="list employees: id, work email, roles, active, last sign-in",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", *FORMATS)),
    default="table",
    show_default=True,
)
def list_command(fmt: str) -> int:
    """List every employee by work email: id, roles, whether active, and the last
    sign-in (UTC; "never" when there was none). No name or other personal data."""

    async def work(_: Services) -> int:
        if fmt != "table":
            return await write_rows(employee_rows(), fmt=fmt, label="employees")
        rows = [row async for row in employee_rows()]
        for line in _table(rows):
            click.echo(line)
        click.echo(f"{len(rows)} employee(s)", err=True)
        return 0

    return run(work)
