"""Fields that are a synchronous resolver without arguments behind a permission check (`me`,
`policyRules`) are answered through api/permissions.py's plain resolver rather than
strawberry's per-field path (issue 16: the light query's fixed cost): the same answers, the
same refusals, the same log rows, for every kind of viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType
from strawberry.permission import PermissionExtension

import api.schema
from api.app import create_app
from api.schema import build_schema
from api.services import Services
from api.settings import Settings
from models import AuditEvent
from tests.conftest import CLIENT_IP, GQL, ME, login, register
from tests.test_guarded_reads import staff_token

QUERIES = (
    ME,
    "{ me { id } }",
    "{ me { id email } policyRules { role category action purpose } }",
    "{ policyRules { role } }",
)


def test_only_synchronous_fields_without_arguments_behind_a_permission_are_taken() -> None:
    # given the served schema
    schema = build_schema(Settings())._schema
    taken = {
        f"{type_.name}.{name}": field
        for type_ in schema.type_map.values()
        if isinstance(type_, GraphQLObjectType)
        for name, field in type_.fields.items()
        if getattr(field.resolve, "permissions", None) is not None
    }
    # then `me` and `policyRules` answer through their plain resolver
    assert {"Query.me", "Query.policyRules"} <= set(taken)
    for field in taken.values():
        definition = field.extensions["strawberry-definition"]
        # each is a synchronous resolver without arguments, and its one extension is the
        # permission check, whose permissions the plain resolver runs
        assert not field.args
        assert not definition.base_resolver.is_async
        [extension] = definition.extensions
        assert type(extension) is PermissionExtension
        assert list(field.resolve.permissions) == list(extension.permissions)
    # and a field with arguments keeps strawberry's path
    customers = schema.type_map["Query"].fields["customers"]
    assert getattr(customers.resolve, "permissions", None) is None


@pytest.fixture
async def strawberrys_path(settings: Settings, services: Services) -> AsyncIterator[GQL]:
    """The same app, with those fields on strawberry's path (nothing installed)."""
    real = api.schema.install_plain_permissions
    api.schema.install_plain_permissions = lambda schema, info_class: []  # type: ignore[assignment]
    try:
        app = create_app(settings, services=services, manage_db=False)
    finally:
        api.schema.install_plain_permissions = real  # type: ignore[assignment]
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield GQL(client)


async def _logged() -> list[tuple[Any, ...]]:
    rows = await AuditEvent.all().order_by("id")
    return [(r.event, r.decision, r.operation, r.reason, r.actor_kind, r.roles) for r in rows]


@pytest.mark.parametrize("query", QUERIES)
async def test_every_viewer_gets_the_same_answer_and_log_on_both_paths(
    gql: GQL, services: Services, strawberrys_path: GQL, query: str
) -> None:
    # given a customer, an agent, a privacy officer and no one
    await register(gql)
    customer = await login(gql)
    agent, _ = await staff_token(gql, services, "customer_care")
    officer, _ = await staff_token(gql, services, "privacy_officer")
    gql.client.cookies.clear()  # the sign-ins' cookies: each asks with its token only
    for token in (None, customer, agent, officer):
        # when each asks on the plain path and on strawberry's
        before = len(await _logged())
        plain = await gql(query, token=token)
        plain_log = (await _logged())[before:]
        answered = await strawberrys_path(query, token=token)
        strawberry_log = (await _logged())[before + len(plain_log) :]
        # then the answers (data and errors) are the same, and so are the rows logged
        assert plain == answered, (token, plain, answered)
        assert plain_log == strawberry_log
