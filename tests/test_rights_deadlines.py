"""A rights request's deadline follows the law of the customer's country (issue 20, point 5):
GDPR's calendar month that stands while the requester proves their identity, CCPA's 45 days
that do not; one extension each, of what that law allows; the clock's history shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.clock import FakeClock
from api.rights import deadlines, lifecycle
from api.rights.deadlines import CCPA, GDPR, UK_GDPR, Period, due, event, jurisdiction_for
from api.services import Services
from models import Customer, RightsRequest, RightsTransition
from tests.conftest import GQL, login, register
from tests.test_rights_requests import (
    OFFICER_FIELDS,
    RESEND,
    VERIFY,
    denials,
    last_code,
    officer,
    submit,
)

STARTED, PAUSED, RESUMED, EXTENDED = "started", "paused", "resumed", "extended"
CLOCK = "clock { at event reason months days } jurisdiction dueAt"
EXTEND = (
    "mutation ($id: ID!, $reason: String!, $months: Int) {"
    " extendRightsRequest(id: $id, reason: $reason, months: $months) {"
    + OFFICER_FIELDS.replace("RightsRequest {", "RightsRequest { " + CLOCK)
    + "} }"
)
MINE = "{ me { rightsRequests { id " + CLOCK + " } } }"


def set_clock(clock: FakeClock, when: datetime) -> None:
    clock.advance(seconds=(when - clock.now()).total_seconds())


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def clock_of(*entries: tuple[datetime, str] | tuple[datetime, str, Period]) -> list[dict[str, Any]]:
    return [event(e[0], e[1], "", e[2] if len(e) > 2 else None) for e in entries]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (at(2026, 1, 31, 9), at(2026, 2, 28, 9)),  # a shorter month: its last day
        (at(2028, 1, 31, 9), at(2028, 2, 29, 9)),  # a leap year
        (at(2026, 12, 31, 23, 59), at(2027, 1, 31, 23, 59)),  # across a year
        (at(2026, 3, 15), at(2026, 4, 15)),
    ],
)
def test_gdpr_answers_within_one_calendar_month(start: datetime, expected: datetime) -> None:
    assert due(GDPR, clock_of((start, STARTED))) == expected


def test_gdpr_stands_while_identity_is_verified_across_a_month_end() -> None:
    submitted, verified = at(2026, 1, 30, 10), at(2026, 2, 2, 16)
    standing = clock_of((submitted, STARTED), (submitted, PAUSED))
    assert due(GDPR, standing) is None  # no due date while it stands
    assert deadlines.paused(standing)
    running = [*standing, event(verified, RESUMED)]
    # one month from submission (28 February), plus the 3 days 6 hours it stood
    assert due(GDPR, running) == at(2026, 2, 28, 10) + timedelta(days=3, hours=6)
    assert due(GDPR, running) == at(2026, 3, 3, 16)


def test_gdpr_extension_adds_months_after_the_first_one() -> None:
    start = at(2026, 1, 31, 9)
    extended = clock_of((start, STARTED), (at(2026, 2, 10), EXTENDED, Period(months=2)))
    assert due(GDPR, extended) == at(2026, 4, 28, 9)  # 28 February, then two months
    one = clock_of((start, STARTED), (at(2026, 2, 10), EXTENDED, Period(months=1)))
    assert due(UK_GDPR, one) == at(2026, 3, 28, 9)
    assert GDPR.extension(None) == Period(months=2)
    assert GDPR.extension(1) == Period(months=1)
    for months in (0, 3, -1):
        with pytest.raises(ValueError, match="1 to 2 months"):
            GDPR.extension(months)


def test_ccpa_counts_45_days_whatever_verification_takes_and_extends_by_45() -> None:
    submitted = at(2026, 1, 31, 9)
    assert not CCPA.verification_pauses
    assert due(CCPA, clock_of((submitted, STARTED))) == at(2026, 3, 17, 9)
    assert due(CCPA, clock_of((at(2028, 2, 1), STARTED))) == at(2028, 3, 17)  # 29 days in Feb
    extended = clock_of((submitted, STARTED), (at(2026, 3, 1), EXTENDED, CCPA.extension(None)))
    assert due(CCPA, extended) == submitted + timedelta(days=90)
    with pytest.raises(ValueError, match="CCPA extends by 45 day"):
        CCPA.extension(1)


def test_the_country_decides_the_law() -> None:
    assert [jurisdiction_for(c, "GDPR") for c in ("DE", "fr", " NO ", "GB", "US")] == [
        "GDPR",
        "GDPR",
        "GDPR",
        "UK_GDPR",
        "CCPA",
    ]
    assert jurisdiction_for("JP", "CCPA") == "CCPA"  # no law of its own: the setting's
    assert jurisdiction_for("", "GDPR") == "GDPR"


async def customer_in(gql: GQL, country: str) -> tuple[str, Customer]:
    email = f"someone.in.{country.lower()}@example.com"
    address = {"line1": "1 Main Street", "city": "Town", "postalCode": "12345", "country": country}
    await register(gql, email=email, address=address)
    token = await login(gql, email)
    gql.client.cookies.clear()
    return token, await Customer.get(email=email)


async def verify(gql: GQL, token: str, email: str) -> dict[str, Any]:
    """Enter a fresh code (the first one lasts 15 minutes; these customers take days)."""
    request_id, _ = await last_code(email)
    await gql(RESEND, {"id": request_id}, token=token)
    request_id, code = await last_code(email)
    body = await gql(VERIFY, {"id": request_id, "code": code}, token=token)
    result: dict[str, Any] = body["data"]["verifyRightsRequest"]
    assert result["status"] == "PENDING", body
    return result


async def mine(gql: GQL, token: str) -> dict[str, Any]:
    body = await gql(MINE, token=token)
    [request] = body["data"]["me"]["rightsRequests"]
    result: dict[str, Any] = request
    return result


async def test_a_gdpr_request_waits_for_verification_then_runs_for_a_month(
    gql: GQL, clock: FakeClock
) -> None:
    set_clock(clock, at(2026, 1, 30, 10))
    token, jane = await customer_in(gql, "DE")
    receipt = await submit(gql, token)
    assert (receipt["status"], receipt["dueAt"]) == ("UNVERIFIED", None)
    request = await mine(gql, token)
    assert request["jurisdiction"] == "GDPR"
    assert [(e["event"], e["reason"]) for e in request["clock"]] == [
        ("STARTED", "submitted"),
        ("PAUSED", "awaiting identity verification"),
    ]
    clock.advance(days=3, hours=6)  # the code is entered after the month's end
    result = await verify(gql, token, jane.email)
    assert datetime.fromisoformat(result["dueAt"]) == at(2026, 3, 3, 16)
    request = await mine(gql, token)
    assert [e["event"] for e in request["clock"]] == ["STARTED", "PAUSED", "RESUMED"]
    assert datetime.fromisoformat(request["clock"][2]["at"]) == at(2026, 2, 2, 16)


async def test_a_ccpa_request_is_due_in_45_days_from_submission_and_extends_by_45(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    set_clock(clock, at(2026, 1, 31, 9))
    token, jim = await customer_in(gql, "US")
    receipt = await submit(gql, token)
    assert datetime.fromisoformat(receipt["dueAt"]) == at(2026, 3, 17, 9)  # from submission
    clock.advance(days=2)
    result = await verify(gql, token, jim.email)  # verification does not move it
    assert datetime.fromisoformat(result["dueAt"]) == at(2026, 3, 17, 9)
    request_id = result["id"]
    officer_token = await officer(gql, services)
    # months mean nothing to a 45-day law: typed, nothing changed
    before = await RightsTransition.filter(request_id=request_id).count()
    wrong = await gql(EXTEND, {"id": request_id, "reason": "x", "months": 2}, officer_token)
    assert wrong["data"]["extendRightsRequest"]["code"] == "VALIDATION"
    stored = await RightsRequest.get(id=request_id)
    assert (stored.due_at, stored.extended_at) == (at(2026, 3, 17, 9), None)
    assert await RightsTransition.filter(request_id=request_id).count() == before
    assert [e.reason for e in await denials("extend")] == ["VALIDATION"]
    reason = "Records held by two services."
    body = await gql(EXTEND, {"id": request_id, "reason": reason}, officer_token)
    node = body["data"]["extendRightsRequest"]
    assert datetime.fromisoformat(node["dueAt"]) == at(2026, 5, 1, 9)  # 90 days in all
    assert node["jurisdiction"] == "CCPA"
    assert [(e["event"], e["days"], e["reason"]) for e in node["clock"]] == [
        ("STARTED", 0, "submitted"),
        ("EXTENDED", 45, reason),
    ]
    # overdue by the law's clock, and only then
    assert await lifecycle.overdue(now=at(2026, 5, 1, 8)) == []
    [late] = await lifecycle.overdue(now=at(2026, 5, 1, 10))
    assert str(late.id) == request_id


async def test_the_default_law_applies_where_the_country_has_none(
    gql: GQL, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        services,
        "settings",
        services.settings.model_copy(update={"rights_default_jurisdiction": "CCPA"}),
    )
    set_clock(clock, at(2026, 6, 1))
    token, _ = await customer_in(gql, "JP")
    receipt = await submit(gql, token)
    assert datetime.fromisoformat(receipt["dueAt"]) == at(2026, 7, 16)
    assert (await mine(gql, token))["jurisdiction"] == "CCPA"


async def test_a_request_from_before_the_clock_starts_it_at_verification(
    gql: GQL, clock: FakeClock
) -> None:
    set_clock(clock, at(2026, 1, 31, 9))
    token, jane = await customer_in(gql, "DE")
    receipt = await submit(gql, token)
    # as an earlier release stored it: no clock, no due date until verified
    await RightsRequest.filter(id=receipt["id"]).update(clock=[], due_at=None)
    clock.advance(days=1)
    result = await verify(gql, token, jane.email)
    assert datetime.fromisoformat(result["dueAt"]) == at(2026, 3, 1, 9)  # as it was: + 1 month
    assert [e["event"] for e in (await mine(gql, token))["clock"]] == ["STARTED"]
