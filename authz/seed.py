"""Seed the default grants of `authz/policy.csv` into an empty policy table."""

from __future__ import annotations

import csv
from importlib import resources

from tortoise.transactions import in_transaction

from authz.adapter import bump_version, policy_columns
from models import PolicyRule


def default_rules() -> list[list[str]]:
    text = resources.files("authz").joinpath("policy.csv").read_text(encoding="utf-8")
    rows = csv.reader(line for line in text.splitlines() if line.strip() and line[0] != "#")
    return [[cell.strip() for cell in row] for row in rows]


async def seed_policy() -> int:
    """Insert the default rules when the table is empty; returns how many were inserted."""
    if await PolicyRule.exists():
        return 0
    rules = default_rules()
    async with in_transaction() as conn:
        await PolicyRule.bulk_create(
            [PolicyRule(ptype=r[0], **policy_columns(r[1:])) for r in rules],
            using_db=conn,
        )
        await bump_version()
    return len(rules)
