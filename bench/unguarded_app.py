"""Custos with the personal-data guards and the decision log switched off: the baseline of
the guard benchmark only. Nothing in `api/` can switch them off; this module patches them
in its own process so the same schema and query can be measured without them:
- every guard answers a full read without asking Casbin or logging: `PersonalData.outcome`
  (the resolver fields'), `PersonalData.outcome_at` (the plain resolvers' through
  graphql-core) and `Context.read_fields` (an object's plain guarded fields together, as
  api/executor.py asks);
- the staff page reads no facts for guards (conditions, consents): `_reading` in
  api/customers/staff.py says no field is guarded;
- the log is discarded.
tests/test_bench_baseline.py checks that the baseline decides and reads nothing of this."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

from api.app import create_app
from api.context import Context, FieldReads, Read
from api.customers import staff
from api.guards import PersonalData
from authz.audit import AuditTrail

_guarded_reading = staff._reading


def _full(self: PersonalData, source: Any, info: Any) -> Read:
    return Read.FULL


def _full_at(
    self: PersonalData, source: Any, context: Any, nodes: Any, parent: Any, key: str
) -> Read:
    return Read.FULL


_ALL_FULL: dict[int, FieldReads] = {}


def _all_full(self: Context, categories: tuple[str, ...], access: Any) -> FieldReads:
    reads = _ALL_FULL.get(len(categories))
    if reads is None:
        reads = _ALL_FULL[len(categories)] = (
            (Read.FULL,) * len(categories),
            (None,) * len(categories),
            (),
        )
    return reads


def _unguarded_reading(info: Any, *path: str) -> tuple[tuple[str, ...], bool]:
    columns, _ = _guarded_reading(info, *path)
    return columns, False


async def _discard(self: AuditTrail, writer: object = None) -> None:
    self.records.clear()


def switch_off(patch: Callable[[object, str, object], None] = setattr) -> None:
    """Guards, their facts and the log off in this process (`patch`: how to set each)."""
    patch(PersonalData, "outcome", _full)
    patch(PersonalData, "outcome_at", _full_at)
    patch(Context, "read_fields", _all_full)
    patch(staff, "_reading", _unguarded_reading)
    patch(AuditTrail, "flush", _discard)


def create() -> Starlette:
    switch_off()
    return create_app()
