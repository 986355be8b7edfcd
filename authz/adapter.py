"""Casbin's async adapter over Tortoise (docs/ARCHITECTURE.md: stack: our own, not casbin-tortoise).

Policy rules live in `policy_rule`. Employee role grants live in `employee_role` (with
who and when) and are presented to Casbin as `g, employee:<id>, <role>` rules, so one
table holds each fact. Every write moves `policy_version`, which other processes watch."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from casbin.persist.adapters.asyncio import AsyncAdapter
from tortoise import connections
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models import EmployeeRole, PolicyRule, PolicyVersion

EMPLOYEE_PREFIX = "employee:"
CHANNEL = "custos_policy"
"""The PostgreSQL NOTIFY channel on which every policy change is announced."""
_FIELDS = ("v0", "v1", "v2", "v3", "v4", "v5")


def employee_subject(employee_id: UUID | str) -> str:
    return f"{EMPLOYEE_PREFIX}{employee_id}"


def policy_columns(rule: list[str]) -> dict[str, Any]:
    """A rule's values as the v0..v5 columns of `policy_rule`."""
    return dict(zip(_FIELDS, rule, strict=False))


def _is_grant(ptype: str, rule: list[str]) -> bool:
    return ptype == "g" and bool(rule) and rule[0].startswith(EMPLOYEE_PREFIX)


async def bump_version() -> None:
    """Move the version; on PostgreSQL also NOTIFY, delivered when the caller commits."""
    updated = await PolicyVersion.filter(id=1).update(version=F("version") + 1)
    if not updated:
        await PolicyVersion.create(id=1, version=1)
    conn = connections.get("default")  # the caller's transaction, when there is one
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(
            "SELECT pg_notify($1, version::text) FROM policy_version WHERE id = 1", [CHANNEL]
        )


async def current_version() -> int:
    row = await PolicyVersion.get_or_none(id=1)
    return row.version if row else 0


class TortoiseAdapter(AsyncAdapter):  # type: ignore[misc]
    async def load_policy(self, model: Any) -> None:
        for row in await PolicyRule.all().order_by("id"):
            values = [getattr(row, f) for f in _FIELDS]
            while values and values[-1] == "":
                values.pop()
            model.add_policy(row.ptype[0], row.ptype, values)
        grants = await EmployeeRole.filter(employee__active=True).values_list("employee_id", "role")
        for employee_id, role in grants:
            model.add_policy("g", "g", [employee_subject(str(employee_id)), str(role)])

    async def save_policy(self, model: Any) -> bool:
        async with in_transaction():
            await PolicyRule.all().delete()
            for sec in ("p", "g"):
                for ptype, assertion in model.model.get(sec, {}).items():
                    for rule in assertion.policy:
                        if not _is_grant(ptype, rule):
                            await PolicyRule.create(ptype=ptype, **policy_columns(rule))
            await bump_version()
        return True

    async def add_policy(self, sec: str, ptype: str, rule: list[str]) -> bool:
        async with in_transaction():
            if _is_grant(ptype, rule):
                raise ValueError("grant roles with authz.roles.grant_role")
            await PolicyRule.create(ptype=ptype, **policy_columns(rule))
            await bump_version()
        return True

    async def remove_policy(self, sec: str, ptype: str, rule: list[str]) -> bool:
        async with in_transaction():
            if _is_grant(ptype, rule):
                raise ValueError("revoke roles with authz.roles.revoke_role")
            deleted = await PolicyRule.filter(ptype=ptype, **policy_columns(rule)).delete()
            await bump_version()
        return deleted > 0

    async def remove_filtered_policy(
        self, sec: str, ptype: str, field_index: int, *field_values: str
    ) -> bool:
        filters = {_FIELDS[field_index + i]: v for i, v in enumerate(field_values) if v != ""}
        async with in_transaction():
            deleted = await PolicyRule.filter(ptype=ptype, **filters).delete()
            await bump_version()
        return deleted > 0
