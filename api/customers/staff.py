"""Staff reads of customers. Who may call them is declared here; what each employee sees of
each customer is decided field by field by the guards (api/guards.py)."""

from __future__ import annotations

from uuid import UUID

import strawberry

from api.context import Info, Read
from api.customers import directory
from api.customers.types import Customer
from api.errors import NotFound, parse_id
from api.guards import Access
from api.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from api.permissions import IsEmployee
from authz.registry import Category, PurposeKey

# The registry's purposes, as the GraphQL enum `Purpose` (an unknown purpose fails validation).
strawberry.enum(PurposeKey, name="Purpose", description="Why personal data is used.")

_CURSOR = "customer"


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type(description="A page of customers (Relay connection), in a stable order.")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo


def _view(facts: directory.CustomerFacts, purpose: str) -> Customer:
    return Customer.from_model(
        facts.customer, purpose=purpose, conditions=facts.conditions, consents=facts.consents
    )


def _searched_visible(info: Info, views: list[Customer], search: str) -> list[Customer]:
    """A search matches the email or phone exactly: only customers whose matched data the
    employee may read (or read masked) are returned, so search is no oracle of who is a
    customer. Each check is a logged decision like any read."""
    category = Category.CONTACT_PHONE if search.strip().startswith("+") else Category.CONTACT_EMAIL
    visible = []
    for view in views:
        access: Access = view.access
        outcome = info.context.read_access(
            category=category,
            purpose=access.purpose,
            subject_id=access.subject_id,
            conditions=access.conditions,
        )
        if outcome is not Read.DENIED:
            visible.append(view)
    return visible


@strawberry.type
class CustomerDirectoryQuery:
    @strawberry.field(
        permission_classes=[IsEmployee],
        description="Customers, for a declared purpose. Exact `search` by email or phone.",
    )
    async def customers(
        self,
        info: Info,
        purpose: PurposeKey,
        first: int = 20,
        after: str | None = None,
        search: str | None = None,
    ) -> CustomerConnection:
        size = page_size(first)
        start = decode_cursor(_CURSOR, after, UUID) if after else None
        rows, more = await directory.customer_page(first=size, after=start, search=search)
        since = await info.context.services.policies.ask_again_since()
        facts = await directory.facts_of(rows, ask_again_since=since)
        views = [_view(f, purpose.value) for f in facts]
        if search:
            views = _searched_visible(info, views, search)
        edges = [CustomerEdge(cursor=encode_cursor(_CURSOR, v.customer_id), node=v) for v in views]
        end = encode_cursor(_CURSOR, rows[-1].id) if rows else None
        return CustomerConnection(
            edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=end)
        )

    @strawberry.field(permission_classes=[IsEmployee], description="One customer, for a purpose.")
    async def customer(
        self,
        info: Info,
        id: strawberry.ID,
        purpose: PurposeKey,
    ) -> Customer | None:
        found = await directory.find_customer(customer_id=parse_id(id, what="customer"))
        if found is None:
            raise NotFound("No such customer.")
        since = await info.context.services.policies.ask_again_since()
        [facts] = await directory.facts_of([found], ask_again_since=since)
        return _view(facts, purpose.value)
