"""The one invariant of `consent_current`: its rows are the latest record (by time, then id)
of each (customer, purpose) in the history, no more and no fewer. Checked after every test
(tests/conftest.py) and after each step of random histories (tests/test_consent_current.py)."""

from __future__ import annotations

from typing import Any

from models import ConsentRecord, CurrentConsent

Row = tuple[str, str, bool, Any, int]  # customer, purpose, granted, at, record id


async def latest_in_history(conn: Any = None) -> set[Row]:
    """Each key's latest record, computed here from every record (not by the database)."""
    latest: dict[tuple[str, str], Row] = {}
    records = ConsentRecord.all().using_db(conn) if conn else ConsentRecord.all()
    for r in await records.values("customer_id", "purpose", "granted", "at", "id"):
        row = (str(r["customer_id"]), r["purpose"], bool(r["granted"]), r["at"], r["id"])
        key = row[:2]
        if key not in latest or (row[3], row[4]) > (latest[key][3], latest[key][4]):
            latest[key] = row
    return set(latest.values())


async def current_rows(conn: Any = None) -> set[Row]:
    rows = CurrentConsent.all().using_db(conn) if conn else CurrentConsent.all()
    return {
        (str(r["customer_id"]), r["purpose"], bool(r["granted"]), r["at"], r["record_id"])
        for r in await rows.values("customer_id", "purpose", "granted", "at", "record_id")
    }


async def assert_current_is_latest(conn: Any = None) -> None:
    current, latest = await current_rows(conn), await latest_in_history(conn)
    assert current == latest, (
        f"consent_current disagrees with the history: "
        f"extra {sorted(current - latest, key=str)[:5]}, "
        f"missing {sorted(latest - current, key=str)[:5]}"
    )
