"""Consent per purpose: given and withdrawn in one call, kept as an append-only history with
source, policy version, truncated IP and user agent; `may_process` obeys it at once."""

from __future__ import annotations

import pytest

from api.consent.service import may_process
from api.services import Services
from api.staff.service import create_employee
from models import AuditEvent, ConsentRecord, Customer
from tests.conftest import CLIENT_IP, GQL, PASSWORD, STAFF_LOGIN, login, register

SET = """
mutation($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) {
    __typename
    ... on ConsentSet { changed consent { purpose granted source } }
    ... on InputError { code field message }
  }
}
"""
HISTORY = """{ me { consents { purpose granted source }
                   consentHistory { purpose granted source policyVersion } } }"""


async def signed_in(gql: GQL) -> tuple[str, Customer]:
    await register(gql)
    token = await login(gql)
    return token, await Customer.get()


async def test_purposes_are_published_with_their_basis(gql: GQL) -> None:
    body = await gql("{ purposes { key legalBasis consentRequired definedIn } }")
    purposes = {p["key"]: p for p in body["data"]["purposes"]}
    assert set(purposes) == {
        "service",
        "support",
        "security",
        "legal",
        "marketing.email",
        "marketing.ads",
        "analytics",
        "personalization",
    }
    assert purposes["analytics"] == {
        "key": "analytics",
        "legalBasis": "consent",
        "consentRequired": True,
        "definedIn": "1",
    }
    assert not purposes["security"]["consentRequired"]


async def test_give_then_withdraw_is_obeyed_at_once_and_kept_as_history(
    gql: GQL, services: Services
) -> None:
    # given a customer who gave no consent at registration
    token, customer = await signed_in(gql)
    assert not await may_process(services=services, customer_id=customer.id, purpose="analytics")
    assert await may_process(services=services, customer_id=customer.id, purpose="service")
    # when they give analytics consent
    given = await gql(SET, {"purpose": "analytics", "granted": True}, token=token)
    assert given["data"]["setConsent"] == {
        "__typename": "ConsentSet",
        "changed": True,
        "consent": {"purpose": "analytics", "granted": True, "source": "preference_centre"},
    }
    assert await may_process(services=services, customer_id=customer.id, purpose="analytics")
    # and withdraw it with the same call
    await gql(SET, {"purpose": "analytics", "granted": False}, token=token)
    # then processing stops at once, and the history keeps both, newest first
    assert not await may_process(services=services, customer_id=customer.id, purpose="analytics")
    me = (await gql(HISTORY, token=token))["data"]["me"]
    assert {"purpose": "analytics", "granted": False, "source": "preference_centre"} in me[
        "consents"
    ]
    assert me["consentHistory"] == [
        {
            "purpose": "analytics",
            "granted": False,
            "source": "preference_centre",
            "policyVersion": "1",
        },
        {
            "purpose": "analytics",
            "granted": True,
            "source": "preference_centre",
            "policyVersion": "1",
        },
    ]
    records = await ConsentRecord.filter(customer_id=customer.id)
    assert {r.ip_truncated for r in records} == {"203.0.113.0/24"}
    assert all(r.ip_truncated != CLIENT_IP and r.user_agent for r in records)


async def test_asking_twice_records_once(gql: GQL) -> None:
    token, customer = await signed_in(gql)
    await gql(SET, {"purpose": "marketing.email", "granted": True}, token=token)
    again = await gql(SET, {"purpose": "marketing.email", "granted": True}, token=token)
    assert again["data"]["setConsent"]["changed"] is False
    assert await ConsentRecord.filter(customer_id=customer.id).count() == 1


@pytest.mark.parametrize("purpose", ["gossip", "service", "security", ""])
async def test_a_purpose_without_consent_is_refused_and_nothing_stored(
    gql: GQL, purpose: str
) -> None:
    token, customer = await signed_in(gql)
    body = await gql(SET, {"purpose": purpose, "granted": True}, token=token)
    result = body["data"]["setConsent"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "InputError",
        "VALIDATION",
        "purpose",
    )
    assert await ConsentRecord.filter(customer_id=customer.id).count() == 0


async def test_staff_and_anonymous_cannot_set_consent(gql: GQL, services: Services) -> None:
    await create_employee(
        services=services,
        email="mark@staff.example.com",
        name="M",
        roles=["marketing"],
        password=PASSWORD,
    )
    await services.authorizer.reload()
    staff = await gql(STAFF_LOGIN, {"email": "mark@staff.example.com", "password": PASSWORD})
    token = staff["data"]["staffLogin"]["token"]
    before = await AuditEvent.filter(decision="deny").count()
    body = await gql(SET, {"purpose": "marketing.email", "granted": True}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await AuditEvent.filter(decision="deny", category="consent.history").count() == (
        before + 1
    )
    gql.client.cookies.clear()
    anonymous = await gql(SET, {"purpose": "marketing.email", "granted": True})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await ConsentRecord.all().count() == 0


async def test_registration_consents_carry_source_and_policy_version(gql: GQL) -> None:
    await register(gql, consents=[{"purpose": "marketing.email", "granted": True}])
    token = await login(gql)
    me = (await gql(HISTORY, token=token))["data"]["me"]
    assert me["consentHistory"] == [
        {
            "purpose": "marketing.email",
            "granted": True,
            "source": "registration",
            "policyVersion": "1",
        }
    ]


async def test_may_process_refuses_an_unknown_purpose(services: Services) -> None:
    customer = await Customer.create(
        email="x@example.com",
        password_hash="-",
        phone="+442079460000",
        address_line1="1",
        address_city="London",
        address_country="GB",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
    )
    with pytest.raises(ValueError, match="unknown purpose"):
        await may_process(services=services, customer_id=customer.id, purpose="gossip")
