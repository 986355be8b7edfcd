"""Staff reads of customers: pages, search, and the conditions the guards decide on.

Everything here loads whole pages in a fixed number of queries whatever the page size: one
for the customers, as plain rows of only the columns the query shows, with their
conditions (`open_case` and `fulfilling_request` as EXISTS columns of the same statement),
one for their consents. A page whose fields no guard decides (ids only) loads neither
conditions nor consents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple
from uuid import UUID

import phonenumbers
from tortoise import connections
from tortoise.expressions import Q, RawSQL

from api.consent.state import ConsentState, consent_states
from api.db_select import select_in
from api.rights.rules import RUNNING
from api.support.service import OPEN
from models import ConsentRecord, Customer


class CustomerFacts(NamedTuple):
    """A customer's row with the facts the guards need: conditions and current consents (a
    tuple: a page makes one per customer, and a frozen dataclass costs three times as much
    to make)."""

    row: Mapping[str, Any]
    conditions: tuple[str, ...]
    consents: dict[str, ConsentRecord]


async def latest_consents(customer_ids: Sequence[UUID | str]) -> list[dict[str, ConsentRecord]]:
    """The latest consent record per purpose, per customer, in one query (a batch loader:
    results in the order of the ids)."""
    keys = [str(i) for i in customer_ids]  # a UUID, or its text as SQLite stores it
    latest: dict[str, dict[str, ConsentRecord]] = {k: {} for k in keys}
    records = await select_in(ConsentRecord, "customer_id", customer_ids, order_by=("at", "id"))
    for record in records:
        latest[str(record.customer_id)][record.purpose] = record  # type: ignore[attr-defined]
    return [latest[k] for k in keys]


def _exists(table: str, condition: str) -> str:
    """Whether the customer of the row has a row of `table` meeting `condition` (SQL over
    code constants only, the same on SQLite and PostgreSQL)."""
    return (
        f'EXISTS (SELECT 1 FROM "{table}" f '  # noqa: S608 (code constants, no input)
        f'WHERE f."customer_id" = "customer"."id" AND {condition})'
    )


_RUNNING = ", ".join(f"'{status.value}'" for status in sorted(RUNNING))
# The conditions a staff read decides on, as columns of the customers' own statement.
CONDITION_SQL = {
    "open_case": _exists("support_case", f"f.\"status\" = '{OPEN}'"),
    "fulfilling_request": _exists("rights_request", f'f."status" IN ({_RUNNING})'),
}
CONDITIONS = {name: RawSQL(sql) for name, sql in CONDITION_SQL.items()}
_FLAGS = itemgetter(*CONDITIONS)  # a row's conditions, in CONDITIONS' order (two or more)


async def facts_of(
    rows: Sequence[Mapping[str, Any]], *, ask_again_since: Mapping[str, datetime]
) -> list[CustomerFacts]:
    """Conditions per customer: `open_case` (an open support case),
    `fulfilling_request` (a rights request received and not yet answered), both read with
    the customers (CONDITIONS), and `consent:PURPOSE` for each purpose currently consented
    to (`ConsentState.GRANTED`: a grant to be asked again after a material policy change
    does not count), in one more query."""
    ids = [row["id"] for row in rows]
    if not ids:
        return []
    consents = await latest_consents(ids)
    facts = []
    flags_of = _FLAGS
    of_flags: dict[tuple[object, ...], tuple[str, ...]] = {}  # most rows share a few
    for row, latest in zip(rows, consents, strict=True):
        flags = flags_of(row)
        conditions = of_flags.get(flags)
        if conditions is None:
            conditions = of_flags[flags] = tuple(
                sorted(name for name, flag in zip(CONDITIONS, flags, strict=True) if flag)
            )
        if latest:  # no record: every purpose NOT_ASKED, no consent condition
            states = consent_states(latest, ask_again_since=ask_again_since)
            granted = [f"consent:{p}" for p, s in states.items() if s is ConsentState.GRANTED]
            conditions = tuple(sorted((*conditions, *granted)))
        facts.append(CustomerFacts(row, conditions, latest))
    return facts


def without_facts(rows: Sequence[Mapping[str, Any]]) -> list[CustomerFacts]:
    """For a page whose fields no guard decides: nothing to read."""
    return [CustomerFacts(row, (), {}) for row in rows]


def _search_filter(term: str) -> Q:
    """Exact match on the email address or the phone number (E.164), never a substring:
    staff look up the customer in front of them, not browse by pattern."""
    clean = term.strip()
    match = Q(email=clean.lower())
    try:
        number = phonenumbers.parse(clean, None)
    except phonenumbers.NumberParseException:
        return match
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return match | Q(phone=e164)


async def customer_page(
    *, first: int, after: UUID | None, search: str | None, columns: Sequence[str], facts: bool
) -> tuple[list[dict[str, Any]], bool]:
    """A page of customers in id order (keyset), and whether there is another page."""
    if not search:
        return await _plain_page(first=first, after=after, columns=columns, facts=facts)
    query = Customer.all()
    if after is not None:
        query = query.filter(id__gt=after)
    if search:
        query = query.filter(_search_filter(search))
    query = query.order_by("id").limit(first + 1)
    if facts:
        rows = await query.annotate(**CONDITIONS).values(*columns, *CONDITIONS)
    else:
        rows = await query.values(*columns)
    return rows[:first], len(rows) > first


_PAGE_SQL: dict[tuple[tuple[str, ...], bool, bool, bool], str] = {}


def _page_sql(columns: tuple[str, ...], facts: bool, after: bool, postgres: bool) -> str:
    """The statement of a plain page (no search), made once per column set: the columns
    under their field names, the conditions as EXISTS columns, keyset and limit."""
    key = (columns, facts, after, postgres)
    sql = _PAGE_SQL.get(key)
    if sql is None:
        names = Customer._meta.fields_db_projection
        shown = [f'"customer"."{names[c]}" "{c}"' for c in columns]
        if facts:
            shown += [f'{sql} "{name}"' for name, sql in CONDITION_SQL.items()]
        where = f' WHERE "customer"."id" > {"$1" if postgres else "?"}' if after else ""
        limit = ("$2" if after else "$1") if postgres else "?"
        sql = (
            f'SELECT {", ".join(shown)} FROM "customer"{where} '  # noqa: S608 (model names)
            f'ORDER BY "customer"."id" LIMIT {limit}'
        )
        _PAGE_SQL[key] = sql
    return sql


async def _plain_page(
    *, first: int, after: UUID | None, columns: Sequence[str], facts: bool
) -> tuple[list[dict[str, Any]], bool]:
    """`customer_page` without a search, written directly: Tortoise's query builder and
    its per-row conversions cost more CPU than the statement. The same rows as
    `values()`: text as stored, times converted by their fields, the id as stored (a
    UUID on PostgreSQL, its text on SQLite: `Customer.from_row` takes either)."""
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    columns = tuple(columns)
    sql = _page_sql(columns, facts, after is not None, postgres)
    params: list[Any] = [] if after is None else [str(after) if not postgres else after]
    params.append(first + 1)
    _, raw = await conn.execute_query(sql, params)
    fields = Customer._meta.fields_map
    convert = [(c, fields[c].to_python_value) for c in columns if c in _CONVERTED]
    keys = [*columns, *CONDITION_SQL] if facts else list(columns)
    rows = []
    for record in raw:
        row = dict(zip(keys, record, strict=True))
        for name, to_python in convert:
            row[name] = to_python(row[name])
        rows.append(row)
    return rows[:first], len(rows) > first


_CONVERTED = frozenset({"email_verified_at", "created_at", "updated_at", "last_login_at"})
"""The columns a page may show that are not text as stored (times)."""


async def find_customer(*, customer_id: UUID, columns: Sequence[str]) -> dict[str, Any] | None:
    rows = (
        await Customer.filter(id=customer_id).annotate(**CONDITIONS).values(*columns, *CONDITIONS)
    )
    return rows[0] if rows else None
