"""Keeps this process's enforcer in step with the database (docs/ARCHITECTURE.md: authorization): on
PostgreSQL a LISTEN on `custos_policy` wakes it as soon as another process commits a change;
a version poll (CUSTOS_POLICY_POLL_SECONDS) covers SQLite and a lost LISTEN connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from tortoise.backends.base.config_generator import expand_db_url

from authz.adapter import CHANNEL, current_version
from authz.enforcer import Authorizer

log = logging.getLogger("custos.policy")
_MAX_BACKOFF = 30.0


def listen_params(database_url: str) -> dict[str, Any] | None:
    """asyncpg.connect arguments for the database, or None when it is not PostgreSQL."""
    config = expand_db_url(database_url)
    if not str(config["engine"]).endswith("asyncpg"):
        return None
    credentials = config["credentials"]
    keys = ("host", "port", "user", "password", "database")
    return {k: credentials[k] for k in keys if credentials.get(k) is not None}


async def sync(authorizer: Authorizer) -> bool:
    """Reload when the database's policy version differs from the loaded one."""
    if await current_version() == authorizer.version:
        return False
    await authorizer.reload()
    return True


async def _listen_once(params: dict[str, Any], wake: asyncio.Event) -> None:
    """Connect and LISTEN; return when the connection is lost."""
    conn = await asyncpg.connect(**params)
    closed = asyncio.Event()
    try:
        conn.add_termination_listener(lambda _conn: closed.set())
        await conn.add_listener(CHANNEL, lambda *_args: wake.set())
        wake.set()  # catch up on anything committed while not listening
        await closed.wait()
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=5)


async def _listen(params: dict[str, Any], wake: asyncio.Event) -> None:
    """Keep a LISTEN connection; reconnect with backoff when it fails or is lost."""
    delay = 0.5
    while True:
        started = time.monotonic()
        try:
            await _listen_once(params, wake)
            log.warning("policy LISTEN connection lost")
        except Exception as exc:  # refused, timed out, lost: the poll covers meanwhile
            log.warning("policy LISTEN failed: %s", type(exc).__name__)
        delay = 1.0 if time.monotonic() - started > _MAX_BACKOFF else min(delay * 2, _MAX_BACKOFF)
        await asyncio.sleep(delay)


async def run_policy_watcher(
    *, authorizer: Authorizer, database_url: str, poll_seconds: float
) -> None:
    """Run until cancelled: reload on a NOTIFY, or when the poll finds a new version."""
    wake = asyncio.Event()
    params = listen_params(database_url)
    listener = asyncio.create_task(_listen(params, wake)) if params else None
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll_seconds)
            wake.clear()
            try:
                await sync(authorizer)
            except Exception as exc:  # the database may be briefly away; the next turn retries
                log.warning("policy reload failed: %s", type(exc).__name__)
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
