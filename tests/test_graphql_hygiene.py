"""GraphQL and HTTP hygiene (docs/ARCHITECTURE.md: security floor): limits on depth, aliases,
tokens and body size; masked unexpected errors; a code on every error; no introspection, IDE, GET or
batching where they are off; health endpoints and security headers; no schema drift."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql.language import Lexer, Source, TokenKind

import api.customers.service as customer_service
from api.app import create_app
from api.schema import schema_sdl
from api.services import Services
from api.settings import Settings
from api.version import VERSION
from models import Customer, OutboxMessage, Session
from tests.conftest import CLIENT_IP, GQL, ME, REGISTER, login, register, registration

SCHEMA_FILE = Path(__file__).parents[1] / "schema.graphql"


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def _app(settings: Settings, services: Services, **overrides: Any) -> Any:
    return create_app(settings.model_copy(update=overrides), services=services, manage_db=False)


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]


def _messages(body: dict[str, Any]) -> list[str]:
    return [error["message"] for error in body.get("errors") or []]


def _token_count(document: str) -> int:
    """Tokens as graphql-core counts them against max_tokens (comments and EOF excluded)."""
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


class Calls:
    """Replaces a service function and records every call to it."""

    def __init__(self, behaviour: Callable[..., Any]) -> None:
        self.count = 0
        self.behaviour = behaviour

    async def __call__(self, **kwargs: Any) -> Any:
        self.count += 1
        return self.behaviour(**kwargs)


def _invalid_token(**_: Any) -> Any:
    raise customer_service.InvalidToken("INVALID_TOKEN")


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """`verifyEmail` resolvers reach this instead of the database."""
    calls = Calls(_invalid_token)
    monkeypatch.setattr(customer_service, "verify_email", calls)
    return calls


# --- limits -------------------------------------------------------------------------


def _nested_me(levels: int) -> str:
    """`{ me { x { x { ... { id } } } } }` with `levels` nested selection sets."""
    inner = "id"
    for _ in range(levels - 1):
        inner = f"x {{ {inner} }}"
    return f"{{ me {{ {inner} }} }}"


DEPTH_ERROR = "nested 11 levels deep; at most 10"


async def test_query_nested_deeper_than_10_levels_is_refused(gql: GQL) -> None:
    # given a query nested 11 levels deep (the schema has no cycles, so the inner fields
    # cannot exist; introspection fields are exempt from the depth count)
    body = await gql(_nested_me(11))
    # then the depth limit is among the errors and nothing is returned
    assert any(DEPTH_ERROR in message for message in _messages(body)), body
    assert body.get("data") is None
    assert set(_codes(body)) == {"QUERY_TOO_COMPLEX"}


async def test_query_nested_10_levels_is_within_the_depth_limit(gql: GQL) -> None:
    # given a query nested exactly 10 levels deep
    body = await gql(_nested_me(10))
    # then it fails only for its unknown fields, not for its depth
    assert body.get("errors"), body
    assert not any("depth" in message for message in _messages(body)), body


VERIFY_DEEP = """
mutation { verifyEmail(token: "t") {
  ... on EmailVerified { customer { address { city } } }
  ... on TokenError { code }
} }
"""


async def test_valid_operation_over_the_depth_limit_never_runs(
    settings: Settings, services: Services, verify_calls: Calls
) -> None:
    # given a valid mutation three levels deep and an app whose depth limit is 2
    async with _client(_app(settings, services, max_query_depth=2)) as c:
        response = await c.post("/graphql", json={"query": VERIFY_DEEP})
    body = response.json()
    # then it is refused before execution: the resolver never ran
    assert _messages(body) == ["The query is nested 3 levels deep; at most 2."], body
    assert body.get("data") is None
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]
    assert verify_calls.count == 0
    # and with a limit of 3 the same operation runs (the limit, not the query, refused it)
    async with _client(_app(settings, services, max_query_depth=3)) as c:
        response = await c.post("/graphql", json={"query": VERIFY_DEEP})
    assert response.json() == {"data": {"verifyEmail": {"code": "INVALID_TOKEN"}}}
    assert verify_calls.count == 1


def _aliased_verifications(count: int) -> str:
    fields = " ".join(f'v{i}: verifyEmail(token: "t{i}") {{ __typename }}' for i in range(count))
    return f"mutation {{ {fields} }}"


async def test_more_than_15_aliases_are_refused(gql: GQL, verify_calls: Calls) -> None:
    # given a mutation with 16 aliases
    body = await gql(_aliased_verifications(16))
    # then it is refused with a validation error and no resolver ran
    assert _messages(body) == ["The query has 16 aliases; at most 15."]
    assert _codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body.get("data") is None
    assert verify_calls.count == 0


async def test_15_aliases_are_allowed(gql: GQL, verify_calls: Calls) -> None:
    # given a mutation with exactly 15 aliases
    body = await gql(_aliased_verifications(15))
    # then every aliased field runs
    assert "errors" not in body, body
    assert body["data"] == {f"v{i}": {"__typename": "TokenError"} for i in range(15)}
    assert verify_calls.count == 15


def _register_document(tokens: int) -> str:
    """A `register` mutation of exactly `tokens` tokens, padded with (duplicate) consents
    so that validation stays cheap."""
    head = (
        'mutation { register(input: { email: "jane.doe@example.com", password: "x", '
        'phone: "+44 20 7946 0958", address: { line1: "1 Road", city: "London", '
        'postalCode: "NW1 6XE", country: "GB" }, consents: ['
    )
    consent = '{ purpose: "analytics", granted: true } '
    tail = "]}) { __typename } }"
    base = _token_count(head + tail)
    per_consent = _token_count(consent)
    consents = (tokens - base) // per_consent
    # top up with selections (each `__typename` is one token)
    missing = tokens - base - consents * per_consent
    selection = "{ " + "__typename " * (1 + missing) + "}"
    document = head + consent * consents + tail.replace("{ __typename }", selection)
    assert _token_count(document) == tokens
    return document


@pytest.fixture
def validate_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the registration validator the `register` resolver runs first."""
    calls: list[int] = []
    real = customer_service.validate_registration

    def counting(**kwargs: Any) -> Any:
        calls.append(1)
        return real(**kwargs)

    monkeypatch.setattr(customer_service, "validate_registration", counting)
    return calls


async def test_document_over_2000_tokens_is_refused(gql: GQL, validate_calls: list[int]) -> None:
    # given a register mutation of 2001 tokens
    body = await gql(_register_document(2001))
    # then parsing is aborted, nothing is returned and the resolver never ran
    assert _messages(body) == [
        "Syntax Error: Document contains more than 2000 tokens. Parsing aborted."
    ]
    assert _codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert body.get("data") is None
    assert validate_calls == []
    assert await Customer.all().count() == 0


async def test_document_of_2000_tokens_runs(gql: GQL, validate_calls: list[int]) -> None:
    # given the same mutation at exactly 2000 tokens
    body = await gql(_register_document(2000))
    # then it runs (and fails on its own terms: duplicate consents, weak password)
    assert "errors" not in body, body
    assert body["data"]["register"]["__typename"] == "InputError"
    assert validate_calls == [1]


# --- errors -------------------------------------------------------------------------

LEAKED_EMAIL = "jane.doe@example.com"


async def test_unexpected_resolver_error_is_masked_and_logged_without_its_message(
    gql: GQL, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a registration whose service call fails unexpectedly, quoting personal data
    async def exploding_register_customer(**_: Any) -> None:
        raise RuntimeError(f"boom {LEAKED_EMAIL}")

    monkeypatch.setattr(customer_service, "register_customer", exploding_register_customer)
    # when the client registers
    with caplog.at_level(logging.DEBUG):
        response = await gql.raw(REGISTER, {"input": registration(email=LEAKED_EMAIL)})
    # then the client sees a generic error with a code, and nothing of the message
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert error["path"] == ["register"]
    assert "boom" not in response.text
    assert LEAKED_EMAIL not in response.text
    # and the log records the exception type but not its message
    graphql_records = [r for r in caplog.records if r.name == "custos.graphql"]
    assert len(graphql_records) == 1
    [record] = graphql_records
    assert record.levelno == logging.ERROR
    assert "RuntimeError" in record.getMessage()
    assert "exploding_register_customer" in record.getMessage()  # where it happened
    # (nowhere in the captured log, whichever logger)
    assert LEAKED_EMAIL not in caplog.text
    assert "boom" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.ERROR)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        pytest.param("{ me { id ", "GRAPHQL_PARSE_FAILED", id="syntax-error"),
        pytest.param("{ me { id nope } }", "GRAPHQL_VALIDATION_FAILED", id="unknown-field"),
        pytest.param("{ me { id } }", "UNAUTHENTICATED", id="no-session"),
    ],
)
async def test_every_error_carries_a_code(gql: GQL, query: str, code: str) -> None:
    # given a request that fails at parsing, validation or authentication
    body = await gql(query)
    # then every error reaching the client carries the expected code
    assert body["errors"], body
    assert _codes(body) == [code] * len(body["errors"])
    assert body.get("data") in (None, {"me": None})


# --- introspection, IDE, GET and batching -------------------------------------------

INTROSPECTION = "{ __schema { types { name } } }"


async def test_introspection_works_in_development(gql: GQL) -> None:
    body = await gql(INTROSPECTION)
    assert "errors" not in body, body
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "Customer", "Employee"} <= names


async def test_introspection_is_refused_in_production(
    settings: Settings, services: Services
) -> None:
    # given the production app
    async with _client(_app(settings, services, env="production")) as c:
        # when a client introspects the schema
        body = (await c.post("/graphql", json={"query": INTROSPECTION})).json()
        # then it gets an error and no data
        assert body.get("data") is None
        assert body["errors"], body
        assert set(_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection has been disabled" in body["errors"][0]["message"]
        # while ordinary operations still work there
        typename = (await c.post("/graphql", json={"query": "{ __typename }"})).json()
        assert typename == {"data": {"__typename": "Query"}}


async def test_graphiql_is_served_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_graphiql_is_not_served_in_production(settings: Settings, services: Services) -> None:
    async with _client(_app(settings, services, env="production")) as c:
        response = await c.get("/graphql", headers={"accept": "text/html"})
    assert 400 <= response.status_code < 500
    assert not response.headers.get("content-type", "").startswith("text/html")
    assert "graphiql" not in response.text.lower()
    assert "<html" not in response.text.lower()


async def test_mutation_over_get_does_not_execute(gql: GQL, client: httpx.AsyncClient) -> None:
    # given a signed-in customer
    await register(gql)
    token = await login(gql)
    assert await Session.all().count() == 1
    # when logout is sent over GET
    response = await client.get(
        "/graphql",
        params={"query": "mutation { logout }"},
        headers={"authorization": f"Bearer {token}"},
    )
    # then it is refused and the session is still valid
    assert 400 <= response.status_code < 500
    assert "mutations are not allowed" in response.text
    me = await gql(ME, token=token)
    assert me["data"]["me"]["email"] == "jane.doe@example.com", me
    assert await Session.filter(revoked_at__isnull=True).count() == 1


async def test_queries_over_get_are_off(client: httpx.AsyncClient) -> None:
    # decision: GraphQL only over POST (no caching of personal data by proxies, no
    # operations carried in URLs and their logs)
    response = await client.get("/graphql", params={"query": "{ __typename }"})
    assert 400 <= response.status_code < 500
    assert '"data"' not in response.text  # a refusal, not a result
    assert "queries are not allowed" in response.text


async def test_batching_is_off(client: httpx.AsyncClient) -> None:
    # given a JSON array of two register operations
    batch = [
        {"query": REGISTER, "variables": {"input": registration(email="a@example.com")}},
        {"query": REGISTER, "variables": {"input": registration(email="b@example.com")}},
    ]
    # when it is posted
    response = await client.post("/graphql", json=batch)
    # then it is refused and neither operation ran
    assert 400 <= response.status_code < 500
    assert await Customer.all().count() == 0
    assert await OutboxMessage.all().count() == 0


# --- schema drift -------------------------------------------------------------------


def test_committed_schema_matches_the_code() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert schema_sdl() == committed, (
        "schema.graphql is out of date with the code; run `custos export-schema` "
        "and commit the result"
    )


# --- health and headers -------------------------------------------------------------


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": VERSION}


async def test_readyz(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        pytest.param("GET", "/healthz", {}, id="healthz"),
        pytest.param("GET", "/readyz", {}, id="readyz"),
        pytest.param("POST", "/graphql", {"json": {"query": "{ __typename }"}}, id="graphql"),
        pytest.param("POST", "/graphql", {"json": {"query": "{ me { id } }"}}, id="gql-error"),
        pytest.param("GET", "/nowhere", {}, id="not-found"),
    ],
)
async def test_responses_carry_security_headers(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    first = await client.request(method, path, **kwargs)
    second = await client.request(method, path, **kwargs)
    for response in (first, second):
        assert len(response.headers["x-request-id"]) >= 16
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    # a request id identifies one request
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


# --- body size ----------------------------------------------------------------------


def _register_body(size: int) -> bytes:
    """A valid register request padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"query": REGISTER, "variables": {"input": registration()}}).encode()
    assert len(body) < size
    return body + b" " * (size - len(body))


async def test_body_over_the_limit_with_content_length_is_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    # given a register request one byte over max_body_bytes, with Content-Length
    assert settings.max_body_bytes == 65536
    response = await client.post(
        "/graphql",
        content=_register_body(65537),
        headers={"content-type": "application/json"},
    )
    # then it is refused with 413 and the registration did not happen
    assert response.request.headers["content-length"] == "65537"
    assert response.status_code == 413
    assert response.json() == {
        "errors": [
            {"message": "Request body too large.", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}
        ]
    }
    assert await Customer.all().count() == 0


async def test_body_at_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    # given the same request at exactly max_body_bytes
    response = await client.post(
        "/graphql",
        content=_register_body(65536),
        headers={"content-type": "application/json"},
    )
    # then it is served
    assert response.status_code == 200
    assert response.json()["data"]["register"]["__typename"] == "RegistrationAccepted"
    assert await Customer.all().count() == 1


async def test_chunked_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    # given a register request over the limit, streamed without Content-Length
    body = _register_body(65537 + 10_000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    # then it is refused with 413 as it streams in, and nothing ran
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "PAYLOAD_TOO_LARGE"}
    assert await Customer.all().count() == 0


async def test_payload_too_large_responses_carry_security_headers(
    client: httpx.AsyncClient,
) -> None:
    # given a refused body, declared or streamed
    async def chunks() -> AsyncIterator[bytes]:
        yield _register_body(65537)

    declared = await client.post(
        "/graphql", content=_register_body(65537), headers={"content-type": "application/json"}
    )
    streamed = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    # then the 413 carries the same headers as every other response
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert len(response.headers["x-request-id"]) >= 16
