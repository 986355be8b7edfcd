"""The baseline of the beacon benchmark: a bare Starlette endpoint that parses the JSON and
inserts the same visit row as `POST /collect`, without session, consent, rate limit,
User-Agent parsing or cookies. Benchmark use only."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.db import close_db, init_db
from models import VisitEvent


async def collect(request: Request) -> Response:
    beacon = json.loads(await request.body())
    await VisitEvent.create(
        customer_id=None,
        visitor_digest="0" * 64,
        purpose="analytics",
        at=datetime.now(UTC),
        page=beacon["page"],
        action=beacon["action"],
        referrer="https://search.example/",
        campaign="",
        browser="Chrome 120",
        os="Windows",
        device_type="desktop",
        language="en-GB",
        ip_full=None,
        ip_truncated="127.0.0.0/24",
    )
    return JSONResponse({"stored": True, "purpose": "analytics"}, status_code=202)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await init_db(os.environ["DATABASE_URL"])
    try:
        yield
    finally:
        await close_db()


def create() -> Starlette:
    return Starlette(routes=[Route("/collect", collect, methods=["POST"])], lifespan=lifespan)
