"""`custos audit follow`: the decision log's background work (the Merkle tree and its signed
checkpoints) in a process of its own, so that servers started with
CUSTOS_AUDIT_INTEGRATE_SECONDS=0 spend none of their CPU on it (docs/AUDIT_LOG.md: the
tree)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from api.audit.log_config import log_config
from api.db import abandon_connections
from api.services import Services
from authz import checkpoints

log = logging.getLogger(__name__)
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def follow(services: Services, every: float) -> None:
    """Integrate new rows and sign checkpoints every `every` seconds until SIGTERM or
    SIGINT. A pass is one transaction per batch: one cut short is rolled back, and the
    next pass (here or in another process) does it again. Stopping waits for no batch."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    work = asyncio.create_task(
        checkpoints.run_loop(
            log_config(services.settings), services.clock.now, integrate_seconds=every
        )
    )
    log.info("audit follower started", extra={"every_seconds": every})
    try:
        await stop.wait()
    finally:
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        # a batch cut short may still be running in PostgreSQL: drop its connection (the
        # batch rolls back) rather than wait for it to finish
        abandon_connections()
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    log.info("audit follower stopped")
