"""Global Privacy Control: `Sec-GPC: 1` from a signed-in customer is an opt-out of
personalised advertising, recorded once with source `gpc` and logged."""

from __future__ import annotations

from api.consent.service import may_process
from api.services import Services
from models import AuditEvent, ConsentRecord, Customer
from tests.conftest import GQL, login, register

ME = "{ me { id } }"


async def test_a_signed_in_customers_signal_is_recorded_once(gql: GQL, services: Services) -> None:
    # given a customer who consented to personalised advertising at registration
    await register(gql, consents=[{"purpose": "marketing.ads", "granted": True}])
    token = await login(gql)
    customer = await Customer.get()
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.ads")
    # when their browser sends Sec-GPC: 1 on several requests
    for _ in range(3):
        response = await gql.client.post(
            "/graphql",
            json={"query": ME},
            headers={"authorization": f"Bearer {token}", "sec-gpc": "1"},
        )
        assert response.json()["data"]["me"]["id"] == str(customer.id)
    # then one opt-out is recorded, with source gpc, and obeyed at once
    records = await ConsentRecord.filter(customer_id=customer.id, source="gpc")
    assert [(r.purpose, r.granted) for r in records] == [("marketing.ads", False)]
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.ads"
    )
    # and logged once
    events = await AuditEvent.filter(event="consent", operation="gpc")
    assert [(e.actor_id, e.subject_id) for e in events] == [(str(customer.id), str(customer.id))]


async def test_recorded_once_across_processes(gql: GQL, services: Services) -> None:
    """Another process (its own memory) finds the record and writes none."""
    await register(gql)
    token = await login(gql)
    headers = {"authorization": f"Bearer {token}", "sec-gpc": "1"}
    await gql.client.post("/graphql", json={"query": ME}, headers=headers)
    services.gpc_recorded.clear()  # as if the next request reached another process
    await gql.client.post("/graphql", json={"query": ME}, headers=headers)
    assert await ConsentRecord.filter(source="gpc").count() == 1


async def test_a_later_explicit_choice_is_respected(gql: GQL, services: Services) -> None:
    await register(gql)
    token = await login(gql)
    headers = {"authorization": f"Bearer {token}", "sec-gpc": "1"}
    await gql.client.post("/graphql", json={"query": ME}, headers=headers)
    set_ads = 'mutation { setConsent(purpose: "marketing.ads", granted: true) { __typename } }'
    await gql.client.post("/graphql", json={"query": set_ads}, headers=headers)
    services.gpc_recorded.clear()
    await gql.client.post("/graphql", json={"query": ME}, headers=headers)
    customer = await Customer.get()
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.ads")


async def test_no_signal_or_no_customer_records_nothing(gql: GQL) -> None:
    await register(gql)
    token = await login(gql)
    await gql.client.post(
        "/graphql", json={"query": ME}, headers={"authorization": f"Bearer {token}"}
    )
    await gql.client.post("/graphql", json={"query": ME}, headers={"sec-gpc": "0"})
    gql.client.cookies.clear()
    await gql.client.post(
        "/graphql", json={"query": "{ purposes { key } }"}, headers={"sec-gpc": "1"}
    )
    assert await ConsentRecord.filter(source="gpc").count() == 0
