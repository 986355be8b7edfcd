"""Staff reads of customers. Who may call them is declared here; what each employee sees of
each customer is decided field by field by the guards (api/guards.py)."""

from __future__ import annotations

from uuid import UUID

import strawberry

from api.context import Info
from api.customers import directory
from api.customers.types import FACT_FREE, Customer, columns_for
from api.errors import NotFound, parse_id
from api.guards import Access
from api.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from api.permissions import IsEmployee
from api.selection import selected_names
from authz.registry import Category, PurposeKey

# The registry's purposes, as the GraphQL enum `Purpose` (an unknown purpose fails validation).
strawberry.enum(PurposeKey, name="Purpose", description="Why personal data is used.")

_CURSOR = "customer"


def _cursor_of(customer: Customer) -> str:
    return encode_cursor(_CURSOR, customer.customer_id)


def _edge_cursor(root: CustomerEdge) -> str:
    return _cursor_of(root.node)


@strawberry.type
class CustomerEdge:
    # written only when asked for: most pages show the nodes alone
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: Customer


@strawberry.type(description="A page of customers (Relay connection), in a stable order.")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo


def _view(facts: directory.CustomerFacts, purpose: str) -> Customer:
    return Customer.from_row(facts.row, purpose=purpose, conditions=facts.conditions)


def _reading(info: Info, *path: str) -> tuple[tuple[str, ...], bool]:
    """The columns the query's customer fields show, and whether any of them is decided
    by a guard (then the rows are read with their conditions)."""
    selected = selected_names(info, *path)
    return columns_for(selected), not selected <= FACT_FREE


def _search_category(search: str) -> str:
    return Category.CONTACT_PHONE if search.strip().startswith("+") else Category.CONTACT_EMAIL


def _searched_visible(info: Info, views: list[Customer], search: str) -> list[Customer]:
    """A search matches the email or phone exactly: only customers whose matched data the
    employee may read (or read masked) are returned, so search is no oracle of who is a
    customer. A match shown is a logged read of that customer's matched data; a match
    hidden is decided without a log row of its own, since a row naming the customer would
    tell whoever reads the log (an auditor searching) that the address is theirs. The
    search itself is one logged event either way (`_log_search`)."""
    category = _search_category(search)
    visible = []
    for view in views:
        access: Access = view.access
        if not info.context.may_read(
            category=category, purpose=access.purpose, conditions=access.conditions
        ):
            continue
        info.context.read_access(
            category=category,
            purpose=access.purpose,
            subject_id=access.subject_id,
            conditions=access.conditions,
        )
        visible.append(view)
    return visible


def _log_search(info: Info, *, search: str, shown: int) -> None:
    """One event per search, the same for a match hidden and no match at all."""
    info.context.audit_event(
        event="search",
        operation="customers",
        decision="allow" if shown else "deny",
        reason=f"{_search_category(search)}: {shown} shown",
    )


async def _search_page(
    info: Info, *, search: str, purpose: str, first: int, after: UUID | None
) -> tuple[list[Customer], bool]:
    """A page of the matches the employee may see, and whether more follow. The page is
    cut from the visible matches only: a hidden match moves no cursor and no
    `hasNextPage`, so "exists but not yours to see" answers exactly like "does not exist".
    Matches are read a page at a time until a page of visible ones (exact matches are
    few: one email, the accounts sharing a phone number)."""
    since = await info.context.services.policies.ask_again_since()
    columns, _ = _reading(info, "edges", "node")
    visible: list[Customer] = []
    more = True
    while more and len(visible) <= first:
        rows, more = await directory.customer_page(
            first=first,
            after=after,
            search=search,
            columns=columns,
            facts=True,
            ask_again_since=since,
        )
        facts = directory.facts_of(rows)
        visible += _searched_visible(info, [_view(f, purpose) for f in facts], search)
        after = rows[-1]["id"] if rows else after
    return visible[:first], len(visible) > first


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
        if search:
            views, more = await _search_page(
                info, search=search, purpose=purpose.value, first=size, after=start
            )
            _log_search(info, search=search, shown=len(views))
        else:
            columns, guarded = _reading(info, "edges", "node")
            since = await info.context.services.policies.ask_again_since() if guarded else {}
            rows, more = await directory.customer_page(
                first=size,
                after=start,
                search=None,
                columns=columns,
                facts=guarded,
                ask_again_since=since,
            )
            facts = directory.facts_of(rows) if guarded else directory.without_facts(rows)
            views = [_view(f, purpose.value) for f in facts]
        edges = [CustomerEdge(node=v) for v in views]
        end = _cursor_of(views[-1]) if views else None
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
        columns, _ = _reading(info)
        since = await info.context.services.policies.ask_again_since()
        found = await directory.find_customer(
            customer_id=parse_id(id, what="customer"), columns=columns, ask_again_since=since
        )
        if found is None:
            raise NotFound("No such customer.")
        [facts] = directory.facts_of([found])
        return _view(facts, purpose.value)
