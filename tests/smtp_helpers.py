"""A real SMTP relay for mail fault tests (aiosmtpd, in a thread of its own) and the
environment that points a `custos` process at it and at the test database."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller

from api.settings import Settings
from tests.test_email import free_port


class Sink:
    """A relay that accepts every message after `delay` seconds and keeps its Message-ID
    (`accepted`, in order). `stop` and `start` again on the same port model an outage."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.port = free_port()
        self.delay = delay
        self.accepted: list[str] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.accepted.append(str(parsed["Message-ID"]))
        return "250 Message accepted for delivery"

    def start(self) -> Sink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.accepted)

    def copies(self) -> Counter[str]:
        return Counter(self.ids())


def sender_env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    """A `custos` process's environment: the test database, SMTP to 127.0.0.1:`port`."""
    env = dict(
        os.environ,
        DATABASE_URL=settings.database_url,
        CUSTOS_MAIL_BACKEND="smtp",
        CUSTOS_SMTP_HOST="127.0.0.1",
        CUSTOS_SMTP_PORT=str(port),
        CUSTOS_SMTP_TIMEOUT_SECONDS="10",
        CUSTOS_MAIL_POLL_SECONDS="0",
    )
    env.update(extra)
    return env


def smtp_to(settings: Settings, port: int, **update: Any) -> Settings:
    return settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_timeout_seconds": 5.0,
            **update,
        }
    )
