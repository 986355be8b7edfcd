from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class PolicyRule(Model):
    """A Casbin policy rule (`p`, or a `g` between roles). Employee role grants are not
    here: they live in `employee_role` and the adapter presents them as `g` rules."""

    id = fields.IntField(primary_key=True)
    ptype = fields.CharField(max_length=8)
    v0 = fields.CharField(max_length=100, default="")
    v1 = fields.CharField(max_length=100, default="")
    v2 = fields.CharField(max_length=100, default="")
    v3 = fields.CharField(max_length=100, default="")
    v4 = fields.CharField(max_length=100, default="")
    v5 = fields.CharField(max_length=100, default="")

    class Meta:
        table = "policy_rule"


class PolicyVersion(Model):
    """One row whose counter moves with every change of rules or role grants, so that
    every process can tell its enforcer is stale (the poll behind the NOTIFY watcher)."""

    id = fields.IntField(primary_key=True)
    version = fields.BigIntField(default=0)

    class Meta:
        table = "policy_version"
