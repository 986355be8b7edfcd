"""A pending change of the account's email address, dropped before anyone confirms it.

`updateProfile(email:)` keeps the new address in `pending_email` until the link mailed to it
is opened (api/customers/service.py `verify_email`). That link must stop working when:
- the customer cancels the change (`cancelEmailChange`): a mistyped address, or a change
  they did not ask for;
- the password changes (`changePassword`, or a reset by mail): the notice mailed to the
  current address about a change the customer did not ask for says to change the
  password, so a password change must also cut off whoever asked for the change with
  the old one, else they could still confirm it and take the account over by its new
  address.

The address is forgotten and the unused tokens mailed to it are made used, in the caller's
transaction. Cancelling what is not pending changes nothing."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.customers.account_lock import locked_customer
from api.security.secret_keys import verifying_keys
from api.security.tokens import keyed_digest
from models import Customer, EmailToken


async def drop_pending_email(
    *, secret: str, customer_id: UUID, now: datetime, conn: BaseDBAsyncClient
) -> bool:
    """Forget the customer's pending address and void the tokens mailed to it; whether a
    change was pending. The address is cleared only from the value read (compare-and-set),
    so of identical concurrent calls one reports the change dropped.

    The customer's row is locked first (api/customers/account_lock.py), as confirming a
    token and an erasure lock it: whichever commits second finds the other's work done (a
    spent token, no pending address, or an erased account)."""
    customer = await locked_customer(customer_id=customer_id, conn=conn)
    pending = customer.pending_email
    if not pending:
        return False
    digests = [keyed_digest(key, "email", pending) for key in verifying_keys(secret)]
    await (
        EmailToken.filter(customer_id=customer_id, used_at=None, email_digest__in=digests)
        .using_db(conn)
        .update(used_at=now)
    )
    cleared = (
        await Customer.filter(id=customer_id, pending_email=pending)
        .using_db(conn)
        .update(pending_email=None, updated_at=now)
    )
    return cleared == 1
