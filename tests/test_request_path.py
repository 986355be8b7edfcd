"""The request path reads what the query shows and no more, and remembers only what cannot
change between requests (issue 16): `me` reads no row for fields that need none, and only
the selected columns otherwise; a staff page of ids loads no facts for the guards; the
document limits and the input rules are remembered per document without ever answering
for other variables; a burst of requests with one token shares one session lookup; one JSON
operation over POST is answered as strawberry's view answers it; scalars that show an
attribute build no resolve info and answer and log as graphql-core's own path does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.app import CustosGraphQL, _dumps
from api.executor import CustosExecutor
from api.guards import PersonalData, install_plain_guards
from api.schema import build_schema
from api.security.sessions import SessionService
from api.services import Services
from api.settings import Settings
from models import AuditEvent
from tests.conftest import GQL, login, register
from tests.test_guarded_reads import PAGE as FULL_PAGE
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
    assert "customer_fact" not in read
    assert _reads_of(sql, "consent_record") == _reads_of(sql, "consent_current") == []
    # and a page showing a guarded field still loads them (and shows the value)
    with statements(caplog) as sql:
        body = await gql(
            "{ customers(purpose: SUPPORT, first: 5) { edges { node { id email } } } }",
            token=token,
        )
    assert all(e["node"]["email"] for e in body["data"]["customers"]["edges"])
    [read] = _reads_of(sql, "customer")
    assert 'LEFT JOIN "customer_fact"' in read  # each customer's facts, one row
    assert _reads_of(sql, "consent_current") == []  # no ask-again bound: the row's purposes
    assert _reads_of(sql, "consent_record") == []  # not the history


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


# --- one JSON operation over POST: answered without strawberry's view, the same -------

SHAPES: dict[str, tuple[str, bytes]] = {
    "plain": ("application/json", b'{"query": "{ __typename }"}'),
    "charset": ("application/json; charset=utf-8", b'{"query": "{ __typename }"}'),
    "null variables": ("application/json", b'{"query": "{ __typename }", "variables": null}'),
    "syntax error": ("application/json", b'{"query": "{ me { "}'),
    "unknown field": ("application/json", b'{"query": "{ nothing }"}'),
    "unknown operation": (
        "application/json",
        b'{"query": "query A { __typename }", "operationName": "B"}',
    ),
    "two operations, no name": (
        "application/json",
        b'{"query": "query A { __typename } query B { __typename }"}',
    ),
    "subscription": ("application/json", b'{"query": "subscription { x }"}'),
    "no query": ("application/json", b'{"variables": {}}'),
    "empty query": ("application/json", b'{"query": ""}'),
    "query not text": ("application/json", b'{"query": 7}'),
    "variables not an object": (
        "application/json",
        b'{"query": "{ __typename }", "variables": []}',
    ),
    "name not text": ("application/json", b'{"query": "{ __typename }", "operationName": 3}'),
    "extensions not an object": (
        "application/json",
        b'{"query": "{ __typename }", "extensions": "x"}',
    ),
    "batch": ("application/json", b'[{"query": "{ __typename }"}]'),
    "batch of numbers": ("application/json", b"[1, 2]"),
    "body null": ("application/json", b"null"),
    "not JSON": ("application/json", b'{"query": '),
    "JSON text": ("application/json", b'"{ __typename }"'),
    "other media type": ("text/plain", b'{"query": "{ __typename }"}'),
    "no media type": ("", b'{"query": "{ __typename }"}'),
}


VIEWED = {
    "no query",
    "query not text",
    "variables not an object",
    "name not text",
    "extensions not an object",
    "batch",
    "batch of numbers",
    "not JSON",
    "other media type",
    "no media type",
}
"""Shapes the fast path leaves to strawberry's view."""


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
async def test_a_json_post_is_answered_as_strawberrys_view_answers_it(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    # given a request of one shape, sent once as it comes and once with the view's own path
    media_type, body = SHAPES[shape]
    headers = {"content-type": media_type} if media_type else {}
    views: list[str] = []
    run = CustosGraphQL.run

    async def counted_run(self: CustosGraphQL, request: Any) -> Any:
        views.append(shape)
        return await run(self, request)

    monkeypatch.setattr(CustosGraphQL, "run", counted_run)
    fast = await client.post("/graphql", content=body, headers=headers)
    fast_views = len(views)
    one_operation = CustosGraphQL._one_operation

    async def only_objects(self: CustosGraphQL, request: Any) -> None:
        await one_operation(self, request)  # its refusal of a body that is not an object
        return

    monkeypatch.setattr(CustosGraphQL, "_one_operation", only_objects)
    viewed = await client.post("/graphql", content=body, headers=headers)
    # then both answer alike, and never with an internal error
    assert fast.status_code < 500
    assert (fast.status_code, fast.text) == (viewed.status_code, viewed.text)
    assert fast.headers["content-type"] == viewed.headers["content-type"]
    # and only the shapes the fast path does not take entered strawberry's view
    assert fast_views == (shape in VIEWED), fast.text


async def test_a_media_type_in_capitals_is_json_too(client: httpx.AsyncClient) -> None:
    # strawberry's view answers "Unsupported content type"; media types ignore case
    body = b'{"query": "{ __typename }"}'
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "Application/JSON"}
    )
    assert response.json() == {"data": {"__typename": "Query"}}


# --- scalars that show an attribute: no resolve info built (api/executor.py) ---------


def _count_infos(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    built: list[str] = []
    original = StrawberryGraphQLCoreExecutionContext.build_resolve_info

    def counting(self: Any, field_def: Any, nodes: Any, parent_type: Any, path: Any) -> Any:
        built.append(f"{parent_type.name}.{nodes[0].name.value}")
        return original(self, field_def, nodes, parent_type, path)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "build_resolve_info", counting)
    return built


async def test_a_page_builds_no_resolve_info_for_fields_that_show_an_attribute(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given ten customers with open cases and a customer-care agent
    for n in range(10):
        await make_customer(n, open_case=True)
    token, _ = await staff_token(gql, services, "customer_care")
    built = _count_infos(monkeypatch)
    # when the agent reads a page of them
    body = await gql(FULL_PAGE, {"purpose": "SUPPORT", "first": 10}, token=token)
    # then every value is there, and an info was built only for fields with resolvers of
    # their own or lists: the page, its edges and each edge's cursor
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert len(nodes) == 10
    assert all(n["email"] and n["phone"] and n["address"]["city"] for n in nodes)
    assert sorted(set(built)) == [
        "CustomerConnection.edges",
        "CustomerEdge.cursor",
        "Query.customers",
    ]
    assert len(built) == 12


@pytest.mark.parametrize(
    ("role", "purpose"),
    [("customer_care", "SUPPORT"), ("fraud_analyst", "SECURITY"), ("legal", "SUPPORT")],
    ids=["full", "masked", "denied"],
)
async def test_scalars_answer_and_log_as_the_generic_path_does(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch, role: str, purpose: str
) -> None:
    # given customers, one with an open case, and an employee of the role
    for n in range(3):
        await make_customer(n, open_case=n == 0)
    token, _ = await staff_token(gql, services, role)
    query = (
        "query($p: Purpose!) { customers(purpose: $p, first: 5) { edges { node "
        "{ id mail: email email phone createdAt address { line1 city country } } } } }"
    )

    async def answer() -> tuple[dict[str, Any], list[tuple[str, str, str, str]]]:
        before = await AuditEvent.filter(event="access").count()
        body = await gql(query, {"p": purpose}, token=token)
        rows = await AuditEvent.filter(event="access").order_by("id").offset(before)
        return body, sorted((r.category, r.action, r.decision, r.subject_id) for r in rows)

    # when the page is read through the shortcut, and again through graphql-core's path
    fast = await answer()
    for name in ("collect_and_execute_subfields", "complete_iterable_value"):
        monkeypatch.setattr(
            CustosExecutor, name, getattr(StrawberryGraphQLCoreExecutionContext, name)
        )
    built = _count_infos(monkeypatch)
    generic = await answer()
    # then both answer the same data and errors, and log the same decisions
    assert [b for b in built if b.endswith(".email")]  # the generic path did run
    assert fast == generic


@pytest.mark.parametrize(
    "value",
    [
        {"data": {"a": "plain", "b": "é ✓ \u2028", "n": 3, "f": 1.5, "t": True}},
        {"data": {"echo": "lone \ud800 surrogate"}},  # orjson refuses: the stdlib writes it
        {"data": {"big": 2**70}},  # past 64 bits: the same
    ],
    ids=["orjson", "surrogate", "big-int"],
)
def test_responses_encode_any_value_as_json_does(value: dict[str, Any]) -> None:
    # when a response is encoded, whichever encoder takes it
    encoded = _dumps(value)
    # then it is compact JSON that reads back as the value, as the standard library's does
    assert isinstance(encoded, bytes)
    assert json.loads(encoded) == value == json.loads(json.dumps(value))
    assert b": " not in encoded
    assert b", " not in encoded
