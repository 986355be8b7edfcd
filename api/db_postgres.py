"""PostgreSQL wiring: tortoise-orm's asyncpg client, with a pool whose connections go back
without a round trip (issue 16, point 2).

Tortoise takes a pool connection for every statement outside a transaction, and asyncpg's
pool resets a connection each time it is given back: one more round trip (`SELECT
pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`) per statement, so a request
of five reads paid ten. The reset undoes session state; Custos leaves none on a pooled
connection. Its advisory locks are transaction locks (`pg_advisory_xact_lock`, released
at commit or rollback); it never SETs a session variable, opens a cursor outside a
transaction or LISTENs on one (the policy watcher has a connection of its own). The one
session lock, retention's run lock (api/retention/purge.py), is unlocked by its holder, who
closes the connection when the unlock fails. So the pool's reset only does what asyncpg
always does first: roll back a transaction left open and drop the connection's listeners.
"""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]
from tortoise.backends.asyncpg.client import AsyncpgDBClient


async def _no_session_state(connection: Any) -> None:
    """The pool's reset: nothing beyond asyncpg's own rollback (see the module)."""


class CustosAsyncpgClient(AsyncpgDBClient):
    async def create_pool(self, **kwargs: Any) -> Any:
        return await asyncpg.create_pool(None, reset=_no_session_state, **kwargs)


# Tortoise loads a backend by module: the PostgreSQL connections of api.db's
# `tortoise_config` name this one.
client_class = CustosAsyncpgClient
