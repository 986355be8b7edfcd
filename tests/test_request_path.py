"""The request path reads what the query shows and no more, and remembers only what cannot
change between requests (issue 16): `me` reads no row for fields that need none, and only
the selected columns otherwise; a staff page of ids loads no facts for the guards; the
document limits and the input rules are remembered per document without ever answering
for other variables; a burst of requests with one token shares one session lookup."""

from __future__ import annotations

import asyncio

import pytest

from api.guards import PersonalData, install_plain_guards
from api.schema import build_schema
from api.security.sessions import SessionService
from api.services import Services
from api.settings import Settings
from tests.conftest import GQL, login, register
from tests.test_guarded_reads import make_customer, staff_token
from tests.test_no_oracle import statements


def _reads_of(sql: list[str], table: str) -> list[str]:
    return [s for s in sql if s.startswith("SELECT") and f'FROM "{table}"' in s]


async def test_me_with_id_only_reads_no_customer_row(
    gql: GQL, caplog: pytest.LogCaptureFixture
) -> None:
    # given a signed-in customer
    await register(gql)
    token = await login(gql)
    await gql("{ me { id } }", token=token)  # warm: the idle expiry may slide once
    # when they ask who they are, with only fields that need no row
    with statements(caplog) as sql:
        body = await gql(
            "{ me { id __typename ... on Customer { consents { purpose } } } }", token=token
        )
    # then the answer names them, and no statement read the customer table
    assert body["data"]["me"]["id"]
    assert body["data"]["me"]["consents"]
    assert _reads_of(sql, "customer") == [], sql


async def test_me_reads_only_the_columns_its_fields_show(
    gql: GQL, caplog: pytest.LogCaptureFixture
) -> None:
    # given a signed-in customer
    await register(gql)
    token = await login(gql)
    await gql("{ me { id } }", token=token)
    # when they read their email and address, through an alias and a fragment
    with statements(caplog) as sql:
        body = await gql(
            "query { who: me { ...Where mail: email } } fragment Where on Customer "
            "{ address { city } }",
            token=token,
        )
    # then the values are there, read in one statement naming those columns only
    assert body["data"]["who"]["mail"] == "jane.doe@example.com"
    assert body["data"]["who"]["address"]["city"]
    [read] = _reads_of(sql, "customer")
    assert '"email"' in read
    assert '"address_city"' in read
    assert "password_hash" not in read
    assert '"phone"' not in read


async def test_an_id_only_page_loads_no_facts(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given customers with open cases and consents
    for n in range(5):
        await make_customer(n, open_case=True, marketing_consent=True)
    token, _ = await staff_token(gql, services, "customer_care")
    ids = "{ customers(purpose: SUPPORT, first: 5) { edges { node { id createdAt } } } }"
    await gql(ids, token=token)
    # when a page shows only fields no guard decides
    with statements(caplog) as sql:
        body = await gql(ids, token=token)
    # then it is one read of the customers, with no condition and no consent read
    assert len(body["data"]["customers"]["edges"]) == 5
    [read] = _reads_of(sql, "customer")
    assert "EXISTS" not in read
    assert _reads_of(sql, "consent_record") == []
    # and a page showing a guarded field still loads them (and shows the value)
    with statements(caplog) as sql:
        body = await gql(
            "{ customers(purpose: SUPPORT, first: 5) { edges { node { id email } } } }",
            token=token,
        )
    assert all(e["node"]["email"] for e in body["data"]["customers"]["edges"])
    assert "EXISTS" in _reads_of(sql, "customer")[0]
    assert len(_reads_of(sql, "consent_record")) == 1


PAGE = (
    "query($first: Int!) { customers(purpose: SUPPORT, first: $first) { edges { node { id } } } }"
)


async def test_the_same_document_is_measured_for_each_page_size(
    gql: GQL, services: Services
) -> None:
    # given a staff member, and a document already let through with a small page
    token, _ = await staff_token(gql, services, "customer_care")
    small = await gql(PAGE, {"first": 5}, token=token)
    assert "errors" not in small
    # when the same document asks for a page over the cost limit
    huge = await gql(PAGE, {"first": 10_000_000}, token=token)
    # then it is refused: the figures remembered for the small page were not reused
    assert huge["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    # and the small page is still let through afterwards
    assert "errors" not in await gql(PAGE, {"first": 5}, token=token)


async def test_a_refused_argument_is_refused_every_time(gql: GQL) -> None:
    # given a document without variables whose text argument breaks its rule
    bad = 'mutation { verifyEmail(token: "a\\u0000b") { __typename } }'
    # when it is sent twice, and a clean one between
    first = await gql(bad)
    clean = await gql('mutation { verifyEmail(token: "abc") { __typename } }')
    second = await gql(bad)
    # then both bad ones are refused the same way, and the clean one is not
    assert first["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert second["errors"] == first["errors"]
    assert "errors" not in clean


async def test_a_burst_with_one_token_shares_one_lookup(
    gql: GQL, services: Services, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # given a customer's token and a process that keeps viewers a while
    await register(gql)
    token = await login(gql)
    sessions = SessionService(
        settings=settings.model_copy(update={"viewer_cache_seconds": 1.0}), clock=services.clock
    )
    # when ten requests resolve it at once, none of them cached yet
    with statements(caplog) as sql:
        viewers = await asyncio.gather(*(sessions.resolve(token) for _ in range(10)))
    # then all ten are the customer, from one statement
    assert {v.kind for v in viewers} == {"customer"}
    assert len({v.subject_id for v in viewers}) == 1
    assert len(_reads_of(sql, "session")) == 1, sql


def test_plain_guards_replace_only_fields_that_are_nothing_but_their_guard() -> None:
    # given the served schema
    schema = build_schema(Settings())._schema
    installed = install_plain_guards(schema)
    # then the attribute fields of the staff page answer through their own guard
    assert {"Customer.email", "Customer.phone", "Customer.address"} <= set(installed)
    for name in installed:
        type_name, field_name = name.split(".")
        field = schema.type_map[type_name].fields[field_name]
        definition = field.extensions["strawberry-definition"]
        # each is an attribute guarded by one PersonalData, nothing else (no permission)
        assert definition.base_resolver is None
        assert [type(e) for e in definition.extensions] == [PersonalData]
        assert field.resolve.guard is definition.extensions[0]
    # and a field with a resolver of its own keeps strawberry's path
    consents = schema.type_map["Customer"].fields["consents"]
    assert getattr(consents.resolve, "guard", None) is None
