"""The invariant of `customer_fact`: for each customer, its row says whether a support case is
open (api/support/service.py OPEN) and whether a rights request is running
(api/rights/rules.py RUNNING), and names the purposes `consent_current` grants; a customer
of whom none of these holds has no row. Worked out here from the code's definitions and the
tables, and compared with what the triggers keep: after every test (tests/conftest.py), and
after each step of random histories (tests/test_customer_fact.py)."""

from __future__ import annotations

from typing import Any

from api.rights.rules import RUNNING
from api.support.service import OPEN
from models import CurrentConsent, CustomerFact, RightsRequest, SupportCase

Facts = tuple[bool, bool, frozenset[str]]  # open case, running request, granted purposes


def _all(model: Any, conn: Any) -> Any:
    return model.all().using_db(conn) if conn else model.all()


async def kept_facts(conn: Any = None) -> dict[str, Facts]:
    """`customer_fact` as the database holds it."""
    rows = await _all(CustomerFact, conn).values(
        "customer_id", "open_case", "fulfilling_request", "purposes"
    )
    return {
        str(r["customer_id"]): (
            bool(r["open_case"]),
            bool(r["fulfilling_request"]),
            frozenset(str(r["purposes"]).split(",")) if r["purposes"] is not None else frozenset(),
        )
        for r in rows
    }


async def defined_facts(conn: Any = None) -> dict[str, Facts]:
    """Each customer's facts, worked out here from the tables and the code's definitions."""
    open_case = {
        str(r["customer_id"])
        for r in await _all(SupportCase, conn).filter(status=OPEN).values("customer_id")
    }
    running = {
        str(r["customer_id"])
        for r in await _all(RightsRequest, conn)
        .filter(status__in=[s.value for s in RUNNING])
        .values("customer_id")
    }
    granted: dict[str, set[str]] = {}
    for r in await _all(CurrentConsent, conn).filter(granted=True).values("customer_id", "purpose"):
        granted.setdefault(str(r["customer_id"]), set()).add(r["purpose"])
    return {
        customer: (customer in open_case, customer in running, frozenset(granted.get(customer, ())))
        for customer in open_case | running | set(granted)
    }


async def assert_facts_hold(conn: Any = None) -> None:
    kept, defined = await kept_facts(conn), await defined_facts(conn)
    assert kept == defined, (
        "customer_fact disagrees with the tables: "
        f"kept {sorted((k, v) for k, v in kept.items() if defined.get(k) != v)[:3]}, "
        f"defined {sorted((k, v) for k, v in defined.items() if kept.get(k) != v)[:3]}"
    )
