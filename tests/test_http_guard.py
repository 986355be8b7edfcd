"""The middleware every request passes (api/http_guard.py): a deadline on the answer and on
the body, and one masked line for an unexpected error."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

import api.customers.service as customer_service
from api.app import create_app
from api.services import Services
from api.settings import Settings
from models import AuditEvent
from tests.conftest import CLIENT_IP

VERIFY = 'mutation { verifyEmail(token: "t") { __typename } }'


def _app(settings: Settings, services: Services, **overrides: Any) -> Any:
    return create_app(settings.model_copy(update=overrides), services=services, manage_db=False)


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def test_a_request_past_its_deadline_is_cancelled(
    settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an operation that would take 30 s, and a deadline of 0.2 s
    finished: list[bool] = []

    async def slow(**_: Any) -> None:
        await asyncio.sleep(30)
        finished.append(True)

    monkeypatch.setattr(customer_service, "verify_email", slow)
    before = await AuditEvent.all().count()
    app = _app(settings, services, request_deadline_seconds=0.2)
    # when it is asked for
    async with asyncio.timeout(5), _client(app) as client:
        response = await client.post("/graphql", json={"query": VERIFY})
    # then the answer is a typed 503, the work was cancelled, and nothing was written
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
    assert response.headers["x-frame-options"] == "DENY"
    assert finished == []
    assert await AuditEvent.all().count() == before


async def test_a_body_that_never_comes_is_answered_408(
    settings: Settings, services: Services
) -> None:
    # given a client that sends half its body and then nothing
    app = _app(settings, services, body_timeout_seconds=0.2)
    messages = [{"type": "http.request", "body": b'{"query":', "more_body": True}]
    sent: list[Message] = []

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": (CLIENT_IP, 40000),
        "server": ("testserver", 443),
    }
    # when the app serves it
    async with asyncio.timeout(5):
        await app(scope, receive, send)
    # then it answers 408 REQUEST_TIMEOUT once the body timeout has passed
    assert sent[0]["status"] == 408
    assert b"REQUEST_TIMEOUT" in sent[1]["body"]


async def test_an_unexpected_error_is_one_masked_line(
    settings: Settings, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given a route that fails with a message quoting personal data
    async def failing(request: Request) -> Response:
        raise RuntimeError("duplicate key jane.doe@example.com")

    app = _app(settings, services)
    app.router.routes.append(Route("/failing", failing))
    # when it is called
    with caplog.at_level(logging.INFO):
        async with _client(app) as client:
            response = await client.get("/failing")
    # then the client sees a masked, typed 500
    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {"message": "Unexpected error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ]
    }
    # and the log has one line with the request id and the type, never the message
    request_id = response.headers["x-request-id"]
    lines = [r for r in caplog.records if request_id in r.getMessage()]
    assert [r.getMessage() for r in lines] == [f"request {request_id}: unexpected RuntimeError"]
    assert all(r.exc_info is None for r in caplog.records)
    assert "jane.doe" not in caplog.text
