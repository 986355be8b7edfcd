"""The demo data fits the documented examples (issue 17, point 6): a customer with an open
support case (customer care may read them), enough customers with visits for `insights` to
show a group, processors that leave the documented `createProcessor` names free, and a
`publishPolicy` date that is accepted today. Seeding twice adds nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from api.clock import FakeClock
from api.demo import DEMO_PASSWORD, SUPPORT_CUSTOMER, VISITORS, seed_demo
from api.services import Services
from models import (
    Customer,
    Disclosure,
    OutboxMessage,
    Processor,
    RecipientNotice,
    RightsRequest,
    SupportCase,
    VisitEvent,
)
from tests.conftest import GQL, STAFF_LOGIN

INSIGHTS = """
query ($from: Date!, $to: Date!) {
  insights(metric: VISITS, groupBy: [PAGE], from: $from, to: $to) { k groups { keys count } } }
"""
CREATE_PROCESSOR = """
mutation { createProcessor(input: { name: "Mailer EU", contact: "privacy@mailer.example",
    country: "IE", contractReference: "DPA-2026-04", purposes: ["marketing.email"],
    categories: ["contact.email"], activeFrom: "2026-01-01T00:00:00Z" }) {
  __typename ... on ProcessorSaved { processor { active } } ... on InputError { code field } } }
"""
PUBLISH = """
mutation ($at: DateTime!) { publishPolicy(version: "2", effectiveAt: $at, material: true,
    summary: "Marketing email now includes partner offers.", text: "New text.",
    changedPurposes: ["marketing.email"]) {
  __typename ... on PolicyPublished { policy { version inEffect } } ... on InputError { code } } }
"""
SUPPORT_READ = """
query ($search: String!) { customers(purpose: SUPPORT, search: $search) {
  edges { node { email supportCases { subject status } } } } }
"""


@pytest.fixture
async def seeded(services: Services) -> list[str]:
    lines = await seed_demo(services=services)
    await services.authorizer.reload()
    return lines


async def staff(gql: GQL, role: str) -> str:
    email = f"{role.replace('_', '.')}@staff.example.com"
    body = await gql(STAFF_LOGIN, {"email": email, "password": DEMO_PASSWORD})
    gql.client.cookies.clear()
    token: str = body["data"]["staffLogin"]["token"]
    return token


async def test_a_demo_customer_has_an_open_case_that_customer_care_can_read(
    gql: GQL, seeded: list[str]
) -> None:
    # given the demo data
    customer = await Customer.get(email=SUPPORT_CUSTOMER)
    [case] = await SupportCase.filter(customer_id=customer.id)
    assert case.status == "open"
    assert f"Open support case: {SUPPORT_CUSTOMER}" in seeded
    # when customer care searches for that customer for support
    body = await gql(
        SUPPORT_READ, {"search": SUPPORT_CUSTOMER}, token=await staff(gql, "customer_care")
    )
    # then the contact data and the case are shown (the open case allows it)
    assert "errors" not in body, body
    [edge] = body["data"]["customers"]["edges"]
    assert edge["node"] == {
        "email": SUPPORT_CUSTOMER,
        "supportCases": [{"subject": "Where is my order?", "status": "open"}],
    }


async def test_insights_show_a_group_over_the_demo_visits(
    gql: GQL, services: Services, clock: FakeClock, seeded: list[str]
) -> None:
    # given the demo data, and marketing asking for the visits of the last four weeks
    today = clock.now().date()
    variables = {"from": str(today - timedelta(days=27)), "to": str(today)}
    body = await gql(INSIGHTS, variables, token=await staff(gql, "marketing"))
    # then each demo page is a group of at least k people
    assert "errors" not in body, body
    k = services.settings.insights_min_group
    groups = {tuple(g["keys"]): g["count"] for g in body["data"]["insights"]["groups"]}
    assert {("/",), ("/products/rings",)} <= set(groups)
    assert len(VISITORS) > k
    visits = await VisitEvent.filter(purpose="analytics").count()
    assert visits == len(VISITORS) * 4 * 2


async def test_the_documented_processor_name_is_free(gql: GQL, seeded: list[str]) -> None:
    # given the demo processors
    names = set(await Processor.all().values_list("name", flat=True))
    assert len(names) == 4
    assert "Mailer EU" not in names
    # when legal creates the processor of the documented example
    body = await gql(CREATE_PROCESSOR, token=await staff(gql, "legal"))
    # then it is created
    assert body["data"]["createProcessor"] == {
        "__typename": "ProcessorSaved",
        "processor": {"active": True},
    }


async def test_the_printed_publication_date_is_accepted_today(
    gql: GQL, services: Services, clock: FakeClock, seeded: list[str]
) -> None:
    # given the example date the demo prints (the notice period plus a day, from today)
    [line] = [line for line in seeded if "effectiveAt" in line]
    at = line.split('effectiveAt: "')[1].rstrip('"')
    day = clock.now().date() + timedelta(days=services.settings.policy_notice_days + 1)
    assert at == f"{day.isoformat()}T00:00:00Z"
    # when legal publishes a material version with it
    body = await gql(PUBLISH, {"at": at}, token=await staff(gql, "legal"))
    # then it is published, announced for later
    assert body["data"]["publishPolicy"] == {
        "__typename": "PolicyPublished",
        "policy": {"version": "2", "inEffect": False},
    }


async def test_seeding_again_adds_nothing(services: Services, seeded: list[str]) -> None:
    counted: dict[str, Any] = {
        "customers": await Customer.all().count(),
        "cases": await SupportCase.all().count(),
        "visits": await VisitEvent.all().count(),
        "processors": await Processor.all().count(),
        "requests": await RightsRequest.all().count(),
        "notices": await RecipientNotice.all().count(),
        "ledger": await Disclosure.all().count(),
    }
    again = await seed_demo(services=services)
    assert again == seeded
    assert counted == {
        "customers": await Customer.all().count(),
        "cases": await SupportCase.all().count(),
        "visits": await VisitEvent.all().count(),
        "processors": await Processor.all().count(),
        "requests": await RightsRequest.all().count(),
        "notices": await RecipientNotice.all().count(),
        "ledger": await Disclosure.all().count(),
    }


async def test_chloes_correction_reached_two_couriers_who_acknowledged(
    seeded: list[str],
) -> None:
    chloe = await Customer.get(email="chloe@example.com")
    [request] = await RightsRequest.filter(customer_id=chloe.id)
    assert (request.kind, request.status) == ("rectification", "completed")
    assert chloe.phone == "+33612345678"
    notices = await RecipientNotice.filter(request_id=request.id).order_by("recipient")
    assert [(n.recipient, n.status, n.outcome) for n in notices] == [
        ("Parcel Express", "acknowledged", "done"),
        ("Relay Couriers", "acknowledged", "no_record"),
    ]
    # its mail was dropped, so the docs' `custos mail send-pending` prints none of it
    assert not await OutboxMessage.filter(recipient="chloe@example.com").exists()
    assert not await OutboxMessage.filter(kind="recipient_notice").exists()
