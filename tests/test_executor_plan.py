"""api/executor.py answers every selection as graphql-core's own executor does: the same
data, the same errors at the same paths, nulls propagated to the same parents, for lists
and objects, nullable or not, with aliases, fragments, `__typename`, resolvers of their
own and `@skip`. A small schema of plain attributes is run through both executors."""

from __future__ import annotations

import asyncio
from inspect import isawaitable
from typing import Any

import pytest
import strawberry
from graphql import execute, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.executor import CustosExecutor
from api.guards import install_plain_attributes


@strawberry.type
class Leaf:
    name: str
    note: str | None = None


@strawberry.type
class Item:
    id: strawberry.ID
    leaf: Leaf
    maybe: Leaf | None = None
    rank: int = 0

    @strawberry.field
    def shout(self) -> str:  # a resolver of its own: graphql-core's path
        return self.leaf.name.upper() if self.leaf.name else "?"

    @strawberry.field
    async def later(self) -> str:  # completes after the plan's loop
        await asyncio.sleep(0)
        return f"later {self.id}"


GOOD = Item(id=strawberry.ID("1"), leaf=Leaf(name="a", note="n"), maybe=Leaf(name="m"))
BROKEN = Item(id=strawberry.ID("2"), leaf=Leaf(name=None))  # type: ignore[arg-type]
NO_ID = Item(id=None, leaf=Leaf(name="c"), rank="x")  # type: ignore[arg-type]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [GOOD, GOOD]

    @strawberry.field
    def broken(self) -> list[Item]:
        return [GOOD, BROKEN]

    @strawberry.field
    def nullable(self) -> list[Item | None] | None:
        return [GOOD, BROKEN, None, NO_ID]

    @strawberry.field
    def one(self) -> Item | None:
        return BROKEN

    @strawberry.field
    def maybe_broken(self) -> list[Item | None]:
        return [NO_ID, GOOD]


SCHEMA = strawberry.Schema(query=Query)
install_plain_attributes(SCHEMA._schema)

QUERIES = {
    "plain list": "{ items { id rank leaf { name note } maybe { name } } }",
    "aliases and fragments": (
        "{ items { a: id ...F leaf { ... on Leaf { n: name } } __typename } }"
        " fragment F on Item { rank shout maybe { note } }"
    ),
    "non-null error nulls the whole list": "{ broken { id leaf { name } } }",
    "errors in a nullable list": "{ nullable { id rank leaf { name note } shout } }",
    "nullable object": "{ one { id leaf { name } } }",
    "bad scalar": "{ maybeBroken { id rank } }",
    "skip": "{ items { id @skip(if: true) rank leaf @include(if: false) { name } } }",
}


def _run(executor: type, query: str) -> dict[str, Any]:
    result = execute(SCHEMA._schema, parse(query), executor_class=executor)
    assert not hasattr(result, "__await__")  # every field here is synchronous
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or ())
    return {"data": result.data, "errors": errors}


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_the_planned_executor_answers_as_graphql_core_does(query: str) -> None:
    planned = _run(CustosExecutor, query)
    generic = _run(StrawberryGraphQLCoreExecutionContext, query)
    assert planned == generic


def test_the_cases_above_do_produce_errors_and_nulls() -> None:
    # the comparison above would pass trivially if nothing failed: it does
    broken = _run(CustosExecutor, QUERIES["non-null error nulls the whole list"])
    assert broken["data"] is None
    assert broken["errors"] == [
        ("Cannot return null for non-nullable field Leaf.name.", ("broken", 1, "leaf", "name"))
    ]
    nullable = _run(CustosExecutor, QUERIES["errors in a nullable list"])
    assert nullable["data"]["nullable"][1] is None  # BROKEN: its non-null leaf failed
    assert nullable["data"]["nullable"][2] is None  # a null item
    assert nullable["data"]["nullable"][3] is None  # NO_ID: its non-null id failed
    assert nullable["data"]["nullable"][0]["shout"] == "A"
    assert len(nullable["errors"]) == 2  # the failed ids end their items: one error each


ASYNC_QUERIES = {
    "awaited fields in a list": "{ items { id later leaf { name } } }",
    "a failed item beside awaited ones": "{ broken { later id leaf { name } } }",
    "awaited fields in a nullable list": "{ nullable { later id leaf { name } } }",
}


async def _run_async(executor: type, query: str) -> dict[str, Any]:
    result = execute(SCHEMA._schema, parse(query), executor_class=executor)
    if isawaitable(result):  # a failed item ends the list at once: no coroutine
        result = await result
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or ())
    return {"data": result.data, "errors": errors}


@pytest.mark.parametrize("query", ASYNC_QUERIES.values(), ids=ASYNC_QUERIES.keys())
async def test_awaited_fields_complete_as_graphql_core_does(query: str) -> None:
    planned = await _run_async(CustosExecutor, query)
    assert planned == await _run_async(StrawberryGraphQLCoreExecutionContext, query)
    assert planned["data"] is None or planned["data"]  # an answer, not an empty shape
