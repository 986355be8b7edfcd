"""The statements of staff reads of customers, written directly: Tortoise's query builder and
its per-row conversions cost more CPU than the statement. Only code constants and the
model's own names enter the SQL; every value is a parameter.

A read that a guard decides on carries its facts as columns of the same statement, from the
customer's row of `customer_fact` (a LEFT JOIN on its key; triggers keep the row from the
tables the facts are about, migration 0022; no row: no fact holds):
- `open_case`: a support case is open;
- `fulfilling_request`: a rights request is received and not yet answered;
- `consented_purposes`: the purposes currently granted, joined by commas (NULL for none;
  a purpose that needs no consent may be among them: the reader keeps those of
  CONSENT_PURPOSES, which costs nothing per row, where a filter here cost an index search
  per purpose and customer). A purpose counts when its latest record (by time, then id; the
  row of `consent_current`, which triggers keep from the history) grants it, and that grant
  was given at or after the purpose's `ask_again_since` bound (a grant older than a
  material policy change that widened the purpose is to be asked again:
  api/consent/state.py says the same for one customer). With no bound in force, the list
  is the fact row's `purposes`; with one, it is worked out from `consent_current` with each
  grant's time, which the fact row does not hold."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from models import Customer

CONDITION_COLUMNS = ("fulfilling_request", "open_case")  # each the condition of that name
CONSENTED = "consented_purposes"
FACT_COLUMNS = (*CONDITION_COLUMNS, CONSENTED)


class Where(StrEnum):
    ALL = "all"
    EMAIL = "email"  # the address, exactly (lowercase)
    EMAIL_OR_PHONE = "email_or_phone"  # the address or the E.164 number, exactly
    ID = "id"  # one customer: no order, no limit


class _Marks:
    """Placeholders in the order the statement's text binds them."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.count = 0

    def __call__(self, cast: str = "") -> str:
        self.count += 1
        return f"${self.count}{cast}" if self.postgres else "?"


_FACT_JOIN = ' LEFT JOIN "customer_fact" f ON f."customer_id" = "customer"."id"'


def _consented_sql(bounded: tuple[str, ...], marks: _Marks) -> str:
    """The granted purposes: with no ask-again bound, the fact row's; else from each
    purpose's latest record (`consent_current`, kept by triggers), `bounded` being those
    with a bound, one parameter each, in that order."""
    if not bounded:
        return 'f."purposes"'
    joined = "string_agg" if marks.postgres else "group_concat"
    cast = "::timestamptz" if marks.postgres else ""
    cases = " ".join(f"WHEN '{p}' THEN {marks(cast)}" for p in bounded)
    bound = f' AND c."at" >= CASE c."purpose" {cases} ELSE c."at" END'
    return (
        f'(SELECT {joined}(c."purpose", \',\') FROM "consent_current" c '  # noqa: S608
        f'WHERE c."customer_id" = "customer"."id" AND c."granted"{bound})'
    )


@lru_cache(maxsize=256)
def customer_sql(
    columns: tuple[str, ...],
    facts: bool,
    bounded: tuple[str, ...],
    where: Where,
    after: bool,
    postgres: bool,
) -> str:
    """The statement of a read: `columns` under their field names, then FACT_COLUMNS if
    `facts`. Parameters in order: one per purpose of `bounded` (its ask-again bound), the
    search's values (`where`), the keyset's last id if `after`, the limit (not for ID)."""
    marks = _Marks(postgres)
    names = Customer._meta.fields_db_projection
    shown = [f'"customer"."{names[c]}" "{c}"' for c in columns]
    if facts:
        shown += [f'f."{c}" "{c}"' for c in CONDITION_COLUMNS]
        shown.append(f'{_consented_sql(bounded, marks)} "{CONSENTED}"')
    tests = []
    if where is Where.EMAIL:
        tests.append(f'"customer"."email" = {marks()}')
    elif where is Where.EMAIL_OR_PHONE:
        tests.append(f'("customer"."email" = {marks()} OR "customer"."phone" = {marks()})')
    elif where is Where.ID:
        tests.append(f'"customer"."id" = {marks()}')
    if after:
        tests.append(f'"customer"."id" > {marks()}')
    sql = f'SELECT {", ".join(shown)} FROM "customer"'  # noqa: S608 (code constants)
    if facts:
        sql += _FACT_JOIN
    if tests:
        sql += " WHERE " + " AND ".join(tests)
    if where is not Where.ID:
        sql += f' ORDER BY "customer"."id" LIMIT {marks()}'
    return sql
