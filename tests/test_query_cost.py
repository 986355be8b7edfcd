"""Query cost before execution (docs/ARCHITECTURE.md: security floor): fragments measured once,
lists multiplied
by `first`, cycles and unused fragments refused, and no cache that skips a limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import parse

from api.query_cost import measure_document
from api.schema import build_schema
from api.services import Services
from api.settings import Settings
from bench.hostile import fan_out
from models import AuditEvent
from tests.conftest import GQL, signed_in_employee

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]


async def _post(gql: GQL, query: str, variables: dict[str, Any] | None = None) -> Any:
    """Within 5 s: today's answer takes milliseconds; the old limiters took minutes."""
    async with asyncio.timeout(5):
        return await gql(query, variables)


async def test_fragment_fan_out_is_refused_before_validation(gql: GQL) -> None:
    # given a 1 KB document whose fragments describe 4 million fields
    document = fan_out(22)
    assert len(document) < 1400
    # when it is posted anonymously
    body = await _post(gql, document)
    # then it is refused at once with a typed error, and nothing ran
    assert body["data"] is None
    assert _codes(body) == [TOO_COMPLEX]
    assert body["errors"][0]["extensions"]["limit"] == "fields"
    assert "4194304 fields" in body["errors"][0]["message"]
    # and the server still answers
    assert (await gql("{ __typename }")) == {"data": {"__typename": "Query"}}


def test_the_measure_is_linear_in_the_document(settings: Settings) -> None:
    # given fan-outs of 20 and of 60 levels (2**60 fields)
    schema = build_schema(settings)._schema
    small = measure_document(schema, parse(fan_out(20)), {})
    huge = measure_document(schema, parse(fan_out(60)), {})
    # then both are measured exactly, the second without expanding anything
    assert small.fields == 2**20
    assert huge.fields == 2**60
    assert huge.depth == 0  # spreads of fragments on the root add no depth


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            'Fragment "A" spreads itself.',
        ),
        (
            "{ __typename } fragment A on Query { ...B } fragment B on Query { ...A }",
            'Fragment "A" spreads itself.',
        ),
        (
            "{ __typename } fragment Lonely on Query { __typename }",
            'Fragment "Lonely" is never used.',
        ),
        (
            "{ ...A } fragment A on Query { __typename } fragment A on Query { me { id } }",
            'Fragment "A" is defined twice.',
        ),
    ],
    ids=["cycle", "cycle-not-reached", "unused", "duplicate"],
)
async def test_fragment_cycles_unused_and_duplicates_are_refused(
    gql: GQL, document: str, message: str
) -> None:
    body = await _post(gql, document)
    assert body["data"] is None
    assert _codes(body) == [TOO_COMPLEX]
    assert body["errors"][0]["message"] == message


async def test_a_long_chain_of_fragments_is_refused_not_crashed(gql: GQL) -> None:
    # given 100 fragments each spreading the next (deeper than any honest document)
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(100))
    body = await _post(gql, f"{{ ...F0 }} {chain} fragment F100 on Query {{ __typename }}")
    # then it is a typed refusal, not an internal error
    assert _codes(body) == [TOO_COMPLEX]
    assert body["errors"][0]["extensions"]["limit"] == "depth"


PAGES_OF_PAGES = """
query Pages($n: Int!) {
  customers(purpose: SECURITY, first: $n) {
    edges { node { id visits(first: $n) { edges { node { page ip } } } } }
  }
}
"""


async def test_nested_pages_are_refused_up_front(gql: GQL, services: Services) -> None:
    # given a fraud analyst and 15 aliases of 200 customers with 200 visits each
    token, _ = await signed_in_employee(gql, services, "fraud_analyst")
    page = (
        "customers(purpose: SECURITY, first: 200) { edges { node { id "
        "visits(first: 200) { edges { node { page ip browser } } } } } }"
    )
    document = "{ " + " ".join(f"a{i}: {page}" for i in range(15)) + " }"
    before = await AuditEvent.all().count()
    # when it is posted
    async with asyncio.timeout(5):
        body = await gql(document, token=token)
    # then it is refused for its cost before anything ran: no decision was logged
    assert body["data"] is None
    assert _codes(body) == [TOO_COMPLEX]
    assert body["errors"][0]["extensions"] == {
        "code": TOO_COMPLEX,
        "limit": "cost",
        "maximum": 50_000,
    }
    assert await AuditEvent.all().count() == before


async def test_first_from_a_variable_is_measured_on_every_request(
    gql: GQL, services: Services
) -> None:
    # given the same document sent twice: small pages, then large ones
    token, _ = await signed_in_employee(gql, services, "fraud_analyst")
    small = await gql(PAGES_OF_PAGES, {"n": 5}, token=token)
    large = await gql(PAGES_OF_PAGES, {"n": 200}, token=token)
    # then the first runs and the second, though its text was validated and cached, is
    # refused for its cost
    assert "errors" not in small, small
    assert small["data"]["customers"]["edges"] == []
    assert _codes(large) == [TOO_COMPLEX]
    assert large["errors"][0]["extensions"]["limit"] == "cost"


async def test_a_variable_default_counts_when_the_variable_is_not_sent(
    gql: GQL, services: Services
) -> None:
    token, _ = await signed_in_employee(gql, services, "fraud_analyst")
    document = PAGES_OF_PAGES.replace("$n: Int!", "$n: Int = 200")
    body = await gql(document, token=token)
    assert _codes(body) == [TOO_COMPLEX]


def test_schema_defaults_of_first_count(settings: Settings) -> None:
    # given `visits` without `first` (its default is 50) inside 200 customers
    schema = build_schema(settings)._schema
    document = parse(
        "{ customers(purpose: SECURITY, first: 200) "
        "{ edges { node { visits { edges { node { page } } } } } } }"
    )
    figures = measure_document(schema, document, {})
    # then the cost counts 200 customers, each with a page of 50 visits:
    # customers + 200 * (edges + node + visits + 50 * (edges + node + page))
    assert figures.cost == 1 + 200 * (1 + 1 + 1 + 50 * (1 + 1 + 1))
    assert figures.depth == 6
    assert figures.fields == 7


def test_the_introspection_query_fits_the_limits(settings: Settings) -> None:
    # GraphiQL's own query (development) is deep but measured within every limit
    from graphql.utilities import get_introspection_query

    schema = build_schema(settings)._schema
    figures = measure_document(schema, parse(get_introspection_query()), {})
    assert figures.depth == 0
    assert figures.fields <= settings.max_query_fields
    assert figures.cost <= settings.max_query_cost
