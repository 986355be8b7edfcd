"""Custos with the personal-data guards and the decision log switched off: the baseline of
the guard benchmark only. Nothing in `api/` can switch them off; this module patches them
in its own process so the same schema and query can be measured without them: every guard
answers a full read without asking Casbin or logging (`PersonalData.outcome`, which both
the plain resolvers and the resolver fields call), and the log is discarded."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from api.app import create_app
from api.context import Read
from api.guards import PersonalData
from authz.audit import AuditTrail


def _full(self: PersonalData, source: Any, info: Any) -> Read:
    return Read.FULL


async def _discard(self: AuditTrail, writer: object = None) -> None:
    self.records.clear()


def create() -> Starlette:
    PersonalData.outcome = _full  # type: ignore[method-assign]
    AuditTrail.flush = _discard  # type: ignore[method-assign]
    return create_app()
