"""The conditions a staff read of customers is decided on, read as columns of the page's own
statement (api/customers/customer_sql.py), agree with their definition in code: an open
case, a running rights request, and each purpose whose latest consent record grants it at
or after the purpose's ask-again bound (api/consent/state.py). Checked over random consent
histories with ties in time, withdrawals and bounds, on both databases, through every read
that carries them (a page, a search, one customer)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from api.consent.state import ConsentState, consent_states
from api.customers import directory
from api.rights.rules import RUNNING
from authz.registry import CONSENT_PURPOSES
from models import ConsentRecord, Customer, RightsRequest, SupportCase
from tests.conftest import stored_customer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PURPOSES = sorted(CONSENT_PURPOSES)
STATUSES = sorted({*RUNNING, "completed", "rejected"})


def expected(latest: dict[str, ConsentRecord], since: dict[str, datetime]) -> set[str]:
    states = consent_states(latest, ask_again_since=since)
    return {f"consent:{p}" for p, s in states.items() if s is ConsentState.GRANTED}


async def histories(rng: random.Random, count: int) -> list[Customer]:
    """`count` customers, each with 0 to 6 consent records at a few distinct times (so
    that ties in time occur), some with an open case or a running request."""
    customers = []
    for n in range(count):
        customer = await stored_customer(n, at=T0)
        for _ in range(rng.randint(0, 6)):
            await ConsentRecord.create(
                customer=customer,
                purpose=rng.choice([*PURPOSES, "service"]),  # one that needs no consent
                granted=rng.random() < 0.6,
                source="registration",
                at=T0 + timedelta(hours=rng.randint(0, 4)),
            )
        if rng.random() < 0.3:
            await SupportCase.create(customer=customer, subject="s", message="m", created_at=T0)
        if rng.random() < 0.3:
            await RightsRequest.create(
                customer=customer,
                kind="access",
                status=rng.choice(STATUSES),
                channel="api",
                submitted_at=T0,
            )
        customers.append(customer)
    return customers


async def test_the_conditions_read_with_the_rows_are_those_defined_in_code() -> None:
    rng = random.Random(20261202)
    customers = await histories(rng, 60)
    ids = [c.id for c in customers]
    latest = dict(zip(map(str, ids), await directory.latest_consents(ids), strict=True))
    open_case = {str(c.customer_id) for c in await SupportCase.filter(status="open")}
    running = {str(r.customer_id) for r in await RightsRequest.filter(status__in=list(RUNNING))}
    for _ in range(8):  # bounds on no purpose, on some, at and between record times
        bounded = rng.sample(PURPOSES, rng.randint(0, len(PURPOSES)))
        since = {
            p: T0 + timedelta(hours=rng.randint(0, 5), minutes=rng.choice((0, 30))) for p in bounded
        }
        rows, more = await directory.customer_page(
            first=100,
            after=None,
            search=None,
            columns=("id", "email"),
            facts=True,
            ask_again_since=since,
        )
        assert not more
        assert len(rows) == 60
        for facts in directory.facts_of(rows):
            key = str(facts.row["id"])
            want = expected(latest[key], since)
            want |= {"open_case"} if key in open_case else set()
            want |= {"fulfilling_request"} if key in running else set()
            assert set(facts.conditions) == want, (key, since)
            assert list(facts.conditions) == sorted(facts.conditions)
            # and one customer, and a search by email, read the same conditions
            found = await directory.find_customer(
                customer_id=facts.row["id"], columns=("id",), ask_again_since=since
            )
            assert found is not None
            assert directory.facts_of([found])[0].conditions == facts.conditions
            searched, _ = await directory.customer_page(
                first=5,
                after=None,
                search=facts.row["email"].upper(),
                columns=("id",),
                facts=True,
                ask_again_since=since,
            )
            assert [directory.facts_of(searched)[0].conditions] == [facts.conditions]


async def test_with_no_ask_again_bound_the_consents_come_from_the_fact_row() -> None:
    # given random histories, and no purpose with an ask-again bound
    rng = random.Random(20261204)
    customers = await histories(rng, 40)
    ids = [c.id for c in customers]
    latest = dict(zip(map(str, ids), await directory.latest_consents(ids), strict=True))
    # when a page is read (its consents from each customer's row of customer_fact)
    rows, _ = await directory.customer_page(
        first=100, after=None, search=None, columns=("id",), facts=True, ask_again_since={}
    )
    # then each customer's consent conditions are those the history defines
    assert len(rows) == 40
    for facts in directory.facts_of(rows):
        consents = {c for c in facts.conditions if c.startswith("consent:")}
        assert consents == expected(latest[str(facts.row["id"])], {}), facts.row["id"]
    # and a withdrawal reaches the page at once (the triggers keep the row)
    granted = next(f for f in directory.facts_of(rows) if "consent:analytics" in f.conditions)
    await ConsentRecord.create(
        customer_id=granted.row["id"],
        purpose="analytics",
        granted=False,
        source="privacy_centre",
        at=T0 + timedelta(days=1),
    )
    again, _ = await directory.customer_page(
        first=100, after=None, search=None, columns=("id",), facts=True, ask_again_since={}
    )
    withdrawn = next(f for f in directory.facts_of(again) if f.row["id"] == granted.row["id"])
    assert "consent:analytics" not in withdrawn.conditions
