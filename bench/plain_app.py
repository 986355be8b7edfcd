"""The baseline: plain strawberry `{ hello }` on Starlette, with the parser and validation
caches on, served the same way as Custos."""

from __future__ import annotations

import strawberry
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


schema = strawberry.Schema(query=Query, extensions=[ParserCache, ValidationCache])
app = Starlette(routes=[Route("/graphql", GraphQL(schema, graphql_ide=None))])
