"""The customer's row, locked before a request writes it or the tokens mailed to it.

Every transaction that writes a customer's row or email tokens takes the row first
(`SELECT ... FOR UPDATE`), as an erasure does (api/rights/erasure.py): on PostgreSQL two such
transactions then queue on the row instead of each holding what the other waits for, a
deadlock that fails one of them with an internal error. SQLite has one writer at a time.

The row is read again under the lock, never carried over from a read before the
transaction: a request checks a password (tens of milliseconds), and whatever committed
meanwhile (an erasure, a password change, a confirmed address) is what it must build on.
Writing back a copy read earlier would put an erased customer's data back."""

from __future__ import annotations

from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.errors import Unauthenticated
from api.serial import session_open
from models import Customer


async def locked_customer(
    *, customer_id: UUID, conn: BaseDBAsyncClient, session_id: int | None = None
) -> Customer:
    """The customer's row as it is now, locked until `conn`'s transaction ends.
    Unauthenticated if the row is gone, or if `session_id` (the request's session) was
    ended meanwhile: signed out, revoked by a password change elsewhere, or deleted by an
    erasure. A request that passed its permission check before that must not write."""
    customer = await Customer.filter(id=customer_id).using_db(conn).select_for_update().first()
    if customer is None:
        raise Unauthenticated()
    if session_id is not None and not await session_open(conn, customer_id, session_id):
        raise Unauthenticated()
    return customer
