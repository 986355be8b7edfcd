"""Processors played by real servers: a small Starlette app on a local port (uvicorn, in
the test's event loop) that receives signed notices and checks them the way
docs/RECIPIENTS.md tells a processor to, with nothing of Custos but the published format;
and an SMTP relay (aiosmtpd) that keeps the mail a processor without an endpoint gets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.real_servers import free_port

TOLERANCE = 300
Post = Callable[[str, bytes, dict[str, str]], Awaitable[Any]]
"""(path, body, headers) -> the response of Custos (the test's ASGI client)."""


def sign(key: str, timestamp: int, body: bytes) -> str:
    """The processor's side of the scheme, as the docs give it."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


class Receiver:
    """One processor's endpoint. `mode`: "ack" checks each notice and acknowledges it
    (after answering 200), "silent" answers 200 and never acknowledges, "fail" answers 503.
    `received` keeps every notice whose signature checked; `rejected` counts the others."""

    def __init__(self, *, mode: str, post: Post, delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/custos-notices"
        self.key = ""
        self.processor_id = ""
        self.received: list[dict[str, Any]] = []
        self.deliveries: list[str] = []
        self.rejected = 0
        self.answers: list[int] = []
        self._post = post
        self._seen: set[str] = set()
        self.app = Starlette(routes=[Route("/custos-notices", self._notice, methods=["POST"])])

    def verified(self, request: Request, body: bytes) -> bool:
        timestamp = request.headers.get("Custos-Timestamp", "")
        given = request.headers.get("Custos-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE:
            return False
        return hmac.compare_digest(sign(self.key, int(timestamp), body), given)

    async def _notice(self, request: Request) -> Response:
        body = await request.body()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "fail":
            return Response(status_code=503)
        if not self.verified(request, body):
            self.rejected += 1
            return Response(status_code=401)
        notice = json.loads(body)
        self.received.append(notice)
        self.deliveries.append(request.headers.get("Custos-Delivery", ""))
        if self.mode != "ack" or notice["notice"] in self._seen:
            return Response(status_code=200)  # a reminder of one already answered: done
        self._seen.add(notice["notice"])
        return Response(status_code=200, background=BackgroundTask(self.acknowledge, notice))

    async def acknowledge(self, notice: dict[str, Any], outcome: str = "done") -> None:
        body = json.dumps({"notice": notice["notice"], "outcome": outcome}).encode()
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Custos-Processor": self.processor_id,
            "Custos-Timestamp": str(now),
            "Custos-Signature": sign(self.key, now, body),
        }
        response = await self._post("/notices/acknowledge", body, headers)
        self.answers.append(response.status_code)


@asynccontextmanager
async def serving(*receivers: Receiver) -> AsyncIterator[None]:
    servers = [
        uvicorn.Server(uvicorn.Config(r.app, host="127.0.0.1", port=r.port, log_level="warning"))
        for r in receivers
    ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    try:
        for server in servers:
            for _ in range(1000):  # up within 10 s, or the test fails on its first notice
                if server.started:
                    break
                await asyncio.sleep(0.01)
        yield
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)


class Mailbox:
    """An SMTP relay that keeps every message: (to, subject, text)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[str, str, str]] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        content = text.get_content() if text is not None else ""
        self.messages.append((str(parsed["To"]), str(parsed["Subject"]), content))
        return "250 Message accepted for delivery"

    def __enter__(self) -> Mailbox:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._controller is not None:
            self._controller.stop()

    def to(self, address: str) -> list[tuple[str, str, str]]:
        return [m for m in self.messages if m[0] == address]
