"""`may_process` is asked by every use of data that needs consent, at the moment of use:
a marketing send's audience and the personalised `recentlyViewed` honour a withdrawal at
once (analytics collection: tests/test_collect.py)."""

from __future__ import annotations

from typing import Any

from api.marketing.audience import email_audience
from api.services import Services
from models import Customer, VisitEvent
from tests.conftest import GQL, login, register, signed_in_employee

SET_CONSENT = """
mutation ($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) { __typename } }
"""
RECENT = "{ me { recentlyViewed(first: 3) } }"


def consents(*purposes: str) -> list[dict[str, Any]]:
    return [{"purpose": p, "granted": True} for p in purposes]


async def customer(gql: GQL, email: str, *purposes: str, verified: bool = True) -> Customer:
    await register(gql, email=email, consents=consents(*purposes))
    found = await Customer.get(email=email)
    if verified:
        found.email_verified_at = found.created_at
        await found.save()
    return found


async def test_the_email_audience_is_decided_at_send_time(gql: GQL, services: Services) -> None:
    # given two consenting customers, one who never consented and one not yet verified
    ann = await customer(gql, "ann@example.com", "marketing.email")
    bob = await customer(gql, "bob@example.com", "marketing.email")
    await customer(gql, "cy@example.com", "analytics")
    await customer(gql, "dee@example.com", "marketing.email", verified=False)
    batch = await email_audience(services=services)
    assert sorted(r.email for r in batch.recipients) == ["ann@example.com", "bob@example.com"]
    assert (batch.considered, batch.after) == (3, None)
    # when Bob withdraws
    token = await login(gql, "bob@example.com")
    body = await gql(SET_CONSENT, {"purpose": "marketing.email", "granted": False}, token=token)
    assert body["data"]["setConsent"]["__typename"] == "ConsentSet"
    # then the very next batch leaves him out
    recipients = (await email_audience(services=services)).recipients
    assert [(r.customer_id, r.email) for r in recipients] == [(ann.id, "ann@example.com")]
    assert bob.id not in {r.customer_id for r in recipients}


async def test_the_audience_comes_in_batches_by_id(gql: GQL, services: Services) -> None:
    for n in range(5):
        await customer(gql, f"c{n}@example.com", "marketing.email")
    seen: list[str] = []
    after = None
    for _ in range(10):
        batch = await email_audience(services=services, after=after, limit=2)
        seen += [r.email for r in batch.recipients]
        after = batch.after
        if after is None:
            break
    assert sorted(seen) == [f"c{n}@example.com" for n in range(5)]
    assert len(seen) == len(set(seen))


async def test_recently_viewed_needs_personalization_consent(gql: GQL) -> None:
    # given a customer who consents to analytics and personalisation, and browsed
    await register(gql, consents=consents("analytics", "personalization"))
    token = await login(gql)
    bearer = {"authorization": f"Bearer {token}"}
    for page in ("/rings", "/necklaces", "/rings", "/watches", "/gifts"):
        response = await gql.client.post(
            "/collect", json={"page": page, "action": "view"}, headers=bearer
        )
        assert response.json()["stored"] is True
    # and another customer's visits
    await VisitEvent.create(
        customer_id=(await customer(gql, "other@example.com")).id,
        purpose="analytics",
        at=(await Customer.get(email="other@example.com")).created_at,
        page="/not-mine",
        action="view",
    )
    # then their own pages come back, newest first, each once
    body = await gql(RECENT, token=token)
    assert body["data"]["me"]["recentlyViewed"] == ["/gifts", "/watches", "/rings"]
    # when they withdraw personalisation
    await gql(SET_CONSENT, {"purpose": "personalization", "granted": False}, token=token)
    # then at once nothing is personalised, though the visits are still held
    body = await gql(RECENT, token=token)
    assert body["data"]["me"]["recentlyViewed"] == []
    assert await VisitEvent.filter(page="/rings").count() == 2


async def test_recently_viewed_is_only_for_the_account_holder(gql: GQL, services: Services) -> None:
    await register(gql, consents=consents("analytics", "personalization"))
    jane = await Customer.get()
    token, _ = await signed_in_employee(gql, services, "fraud_analyst")
    query = "query ($id: ID!) { customer(id: $id, purpose: SECURITY) { recentlyViewed } }"
    body = await gql(query, {"id": str(jane.id)}, token=token)
    assert body["data"]["customer"]["recentlyViewed"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
