"""Custos with the personal-data guards and the decision log switched off: the baseline of
the guard benchmark only. Nothing in `api/` can switch them off; this module patches them
in its own process so the same schema and query can be measured without them."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from api.app import create_app
from api.guards import PersonalData
from authz.audit import AuditTrail


def _through(self: Any, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
    return next_(source, info, **kwargs)


async def _through_async(self: Any, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
    return await next_(source, info, **kwargs)


async def _discard(self: AuditTrail, writer: object = None) -> None:
    self.records.clear()


def create() -> Starlette:
    PersonalData.resolve = _through  # type: ignore[method-assign]
    PersonalData.resolve_async = _through_async  # type: ignore[method-assign]
    AuditTrail.flush = _discard  # type: ignore[method-assign]
    return create_app()
