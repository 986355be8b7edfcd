"""Staff reads of customers: pages, search, and the conditions the guards decide on.

Every read is one statement whatever the page size: the customers as plain rows of only the
columns the query shows and, when a field a guard decides is selected, their conditions as
columns of the same statement (api/customers/customer_sql.py): `open_case`,
`fulfilling_request` and the purposes currently consented to. A page whose fields no guard
decides (ids only) reads none of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple
from uuid import UUID

import phonenumbers
from tortoise import connections

from api.customers.customer_sql import CONDITION_COLUMNS, FACT_COLUMNS, Where, customer_sql
from api.db_select import select_in
from authz.registry import CONSENT_PURPOSES
from models import ConsentRecord, Customer


class CustomerFacts(NamedTuple):
    """A customer's row with the conditions the guards decide on (a tuple: a page makes one
    per customer, and a frozen dataclass costs three times as much to make)."""

    row: Mapping[str, Any]
    conditions: tuple[str, ...]


async def latest_consents(customer_ids: Sequence[UUID | str]) -> list[dict[str, ConsentRecord]]:
    """The latest consent record per purpose, per customer, in one query (a batch loader:
    results in the order of the ids)."""
    keys = [str(i) for i in customer_ids]  # a UUID, or its text as SQLite stores it
    latest: dict[str, dict[str, ConsentRecord]] = {k: {} for k in keys}
    records = await select_in(ConsentRecord, "customer_id", customer_ids, order_by=("at", "id"))
    for record in records:
        latest[str(record.customer_id)][record.purpose] = record  # type: ignore[attr-defined]
    return [latest[k] for k in keys]


def _conditions(flags: tuple[Any, ...]) -> tuple[str, ...]:
    """The conditions of a row's fact columns: each EXISTS column that holds, and
    `consent:PURPOSE` for each purpose of the granted list that needs consent."""
    *exists, granted = flags
    held = [name for name, flag in zip(CONDITION_COLUMNS, exists, strict=True) if flag]
    held += [f"consent:{p}" for p in (granted or "").split(",") if p in CONSENT_PURPOSES]
    return tuple(sorted(set(held)))


_FLAGS = itemgetter(*FACT_COLUMNS)  # a row's fact columns, as a tuple (two or more)


def facts_of(rows: Sequence[Mapping[str, Any]]) -> list[CustomerFacts]:
    """Each row with its conditions, from the fact columns read with it; most rows share a
    few combinations, each worked out once."""
    known: dict[tuple[Any, ...], tuple[str, ...]] = {}
    flags_of = _FLAGS
    facts = []
    for row in rows:
        flags = flags_of(row)
        conditions = known.get(flags)
        if conditions is None:
            conditions = known[flags] = _conditions(flags)
        facts.append(CustomerFacts(row, conditions))
    return facts


def without_facts(rows: Sequence[Mapping[str, Any]]) -> list[CustomerFacts]:
    """For a page whose fields no guard decides: nothing to read."""
    return [CustomerFacts(row, ()) for row in rows]


def _searched(term: str) -> tuple[Where, list[Any]]:
    """Exact match on the email address or the phone number (E.164), never a substring:
    staff look up the customer in front of them, not browse by pattern."""
    clean = term.strip()
    try:
        number = phonenumbers.parse(clean, None)
    except phonenumbers.NumberParseException:
        return Where.EMAIL, [clean.lower()]
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Where.EMAIL_OR_PHONE, [clean.lower(), e164]


async def _select(
    columns: Sequence[str],
    *,
    facts: bool,
    since: Mapping[str, datetime],
    where: Where,
    params: list[Any],
    after: UUID | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The rows of one statement (customer_sql), as `values()` would give them: text as
    stored, times converted by their fields, the id as stored (a UUID on PostgreSQL, its
    text on SQLite: `Customer.from_row` takes either)."""
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    columns = tuple(columns)
    consented = tuple(sorted(since)) if facts else ()
    sql = customer_sql(columns, facts, consented, where, after is not None, postgres)
    values: list[Any] = [since[p] for p in consented] + params
    if after is not None:
        values.append(after if postgres else str(after))
    if limit is not None:
        values.append(limit)
    _, raw = await conn.execute_query(sql, values)
    fields = Customer._meta.fields_map
    convert = [(c, fields[c].to_python_value) for c in columns if c in _CONVERTED]
    keys = [*columns, *FACT_COLUMNS] if facts else list(columns)
    rows = []
    for record in raw:
        row = dict(zip(keys, record, strict=True))
        for name, to_python in convert:
            row[name] = to_python(row[name])
        rows.append(row)
    return rows


_CONVERTED = frozenset({"email_verified_at", "created_at", "updated_at", "last_login_at"})
"""The columns a page may show that are not text as stored (times)."""


async def customer_page(
    *,
    first: int,
    after: UUID | None,
    search: str | None,
    columns: Sequence[str],
    facts: bool,
    ask_again_since: Mapping[str, datetime],
) -> tuple[list[dict[str, Any]], bool]:
    """A page of customers in id order (keyset), and whether there is another page."""
    where, params = _searched(search) if search else (Where.ALL, [])
    rows = await _select(
        columns,
        facts=facts,
        since=ask_again_since,
        where=where,
        params=params,
        after=after,
        limit=first + 1,
    )
    return rows[:first], len(rows) > first


async def find_customer(
    *, customer_id: UUID, columns: Sequence[str], ask_again_since: Mapping[str, datetime]
) -> dict[str, Any] | None:
    """One customer's row with its fact columns, or None."""
    conn = connections.get("default")
    key = customer_id if conn.capabilities.dialect == "postgres" else str(customer_id)
    rows = await _select(columns, facts=True, since=ask_again_since, where=Where.ID, params=[key])
    return rows[0] if rows else None
