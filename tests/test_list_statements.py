"""Every list the API serves reads in a constant number of statements, whatever its
length (issue 16): a list of 1, 10 or 100 rows costs the same statements, with every field
a client shows (nested ones too, such as a request's status history). An N+1, or a list
re-read per field, makes the count grow with the list and fails these tests.

Each list is read once to warm up (a session's idle expiry may slide once), then with 1,
10 and 100 rows: lists that page are asked for that many (`first`), the others simply
hold that many."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.audit.log_config import log_config
from api.clock import FakeClock
from api.pagination import encode_cursor as cursor
from api.services import Services
from authz import checkpoints
from models import (
    AuditEvent,
    AuditPosting,
    Campaign,
    ConsentRecord,
    Customer,
    Disclosure,
    LegalHold,
    OutboxMessage,
    PolicyChange,
    PolicyProposal,
    Processor,
    RightsRequest,
    RightsTransition,
    SupportCase,
    VisitEvent,
)
from tests.conftest import GQL, login, register, signed_in_employee, unsaved_customer
from tests.test_no_oracle import statements

SIZES = (1, 10, 100)


@dataclass
class World:
    """Who reads, and the customer the rows are about."""

    services: Services
    clock: FakeClock
    token: str
    customer_id: UUID
    employee_id: UUID

    def at(self, n: int) -> datetime:
        """Row `n`'s time: distinct, in the past, later for a larger `n`."""
        return self.clock.now() - timedelta(days=1) + timedelta(seconds=n)


Rows = Callable[[World, range], Awaitable[None]]
"""Adds the rows numbered `range` to the list."""


@dataclass(frozen=True)
class Listing:
    query: str
    role: str | None
    """The employee role that reads it; None: the customer reads their own."""
    rows: Rows
    path: tuple[str, ...]
    """Where the list is in the response's `data` (a connection's edges, or the list)."""
    most: int
    """The most SELECTs one read of the list may take."""

    def __str__(self) -> str:
        return f"{self.role or 'customer'}:{'.'.join(self.path)}"

    def items(self, data: dict[str, Any]) -> list[Any]:
        listed: Any = data
        for name in self.path:
            listed = listed[name]
        return listed["edges"] if isinstance(listed, dict) else listed


# -- the rows ------------------------------------------------------------------------------


async def customers(world: World, numbers: range) -> list[Customer]:
    rows = [
        unsaved_customer(n, at=world.at(n), email=f"list{n}@example.com", phone=f"+44207946{n:04d}")
        for n in numbers
    ]
    await Customer.bulk_create(rows)
    return rows


async def rights_requests(world: World, numbers: range) -> None:
    """Pending requests with their two transitions (submitted, then verified)."""
    requests = [
        RightsRequest(
            id=uuid4(),
            customer_id=world.customer_id,
            kind="access",
            status="pending",
            channel="account",
            details=f"request {n}",
            submitted_at=world.at(n),
            received_at=world.at(n),
            due_at=world.at(n) + timedelta(days=30),
        )
        for n in numbers
    ]
    await RightsRequest.bulk_create(requests)
    await RightsTransition.bulk_create(
        RightsTransition(
            request_id=r.id,
            from_status=old,
            to_status=new,
            actor_kind="customer",
            at=r.submitted_at,
        )
        for r in requests
        for old, new in (("", "unverified"), ("unverified", "pending"))
    )


async def disclosures(world: World, numbers: range) -> None:
    await Disclosure.bulk_create(
        Disclosure(
            at=world.at(n),
            customer_id=world.customer_id,
            recipient=f"Authority {n}",
            categories=["contact.email"],
            legal_basis="legal_obligation",
            reference=f"REF-{n}",
            recorded_by=world.employee_id,
            note=f"note {n}",
            prev_hash=f"{n:064x}",
            hash=f"{n + 1:064x}",
        )
        for n in numbers
    )


async def processors(world: World, numbers: range) -> None:
    await Processor.bulk_create(
        Processor(
            id=uuid4(),
            name=f"Processor {n}",
            contact=f"privacy{n}@processor.example",
            country="IE",
            contract_reference=f"C-{n}",
            purposes=["support"],
            categories=["contact.email"],
            active_from=world.at(n),
            created_by=world.employee_id,
            created_at=world.at(n),
            updated_by=world.employee_id,
            updated_at=world.at(n),
        )
        for n in numbers
    )


async def signed_staff_accesses(world: World, numbers: range) -> None:
    """The same, in the log's tree and under a signed checkpoint."""
    await staff_accesses(world, numbers)
    config = log_config(world.services.settings)
    await checkpoints.sign(config, world.clock.now(), force=True)


async def staff_accesses(world: World, numbers: range) -> None:
    """Allowed staff reads of the customer's data, each in a request of its own."""
    events = [
        AuditEvent(
            at=world.at(n),
            request_id=f"req{n}",
            actor_kind="employee",
            actor_id=str(world.employee_id),
            roles="customer_care",
            event="access",
            category="contact.email,contact.phone",
            action="read",
            subject_id=str(world.customer_id),
            purpose="support",
            decision="allow",
            prev_hash="0" * 64,
            hash=f"{uuid4().hex}{n:032x}",
        )
        for n in numbers
    ]
    await AuditEvent.bulk_create(events)
    ids = await AuditEvent.filter(hash__in=[e.hash for e in events]).values_list("id", "at")
    await AuditPosting.bulk_create(
        AuditPosting(
            subject_id=str(world.customer_id),
            first_id=i,
            block=i >> 10,
            first_at=at,
            last_at=at,
            event_ids=str(i),
        )
        for i, at in ids
    )


async def support_cases(world: World, numbers: range) -> None:
    await SupportCase.bulk_create(
        SupportCase(
            id=uuid4(),
            customer_id=world.customer_id,
            subject=f"Case {n}",
            message=f"Message {n}",
            created_at=world.at(n),
        )
        for n in numbers
    )


async def proposals(world: World, numbers: range, *, due: bool = False) -> None:
    """Pending grants of a role to employees (ids only: the list shows no employee);
    `due`: past their expiry, for the next sweep to expire."""
    rows = []
    for n in numbers:
        employee = uuid4()
        text = f"grant marketing to employee:{employee}"
        rows.append(
            PolicyProposal(
                id=uuid4(),
                kind="grant_role",
                change={"employee_id": str(employee), "role": "marketing"},
                text=text,
                pending_key=text,
                proposed_by=world.employee_id,
                proposed_at=world.at(n),
                expires_at=world.at(n) if due else world.clock.now() + timedelta(days=7),
            )
        )
    await PolicyProposal.bulk_create(rows)


async def policy_changes(world: World, numbers: range) -> None:
    await PolicyChange.bulk_create(
        PolicyChange(
            version=1000 + n,
            at=world.at(n),
            kind="grant_role",
            text=f"grant marketing to employee:{uuid4()}",
            proposed_by=world.employee_id,
            approved_by=uuid4(),
            proposal_id=uuid4(),
        )
        for n in numbers
    )


async def campaigns(world: World, numbers: range) -> None:
    """Campaigns with a message in each delivery state."""
    rows = [
        Campaign(
            id=uuid4(),
            subject=f"Campaign {n}",
            body_text="Hello",
            status="sending",
            created_by=world.employee_id,
            created_at=world.at(n),
        )
        for n in numbers
    ]
    await Campaign.bulk_create(rows)
    states = [("pending", ""), ("sent", ""), ("pending", "timeout"), ("dead", "refused")]
    await OutboxMessage.bulk_create(
        OutboxMessage(
            kind="campaign",
            recipient="someone@example.com",
            subject=c.subject,
            body_text="Hello",
            campaign_id=c.id,
            status=status,
            last_error=error,
            next_attempt_at=c.created_at,
            created_at=c.created_at,
        )
        for c in rows
        for status, error in states
    )


async def legal_holds(world: World, numbers: range) -> None:
    await LegalHold.bulk_create(
        LegalHold(
            id=uuid4(),
            customer_id=world.customer_id,
            categories=["contact.email"],
            reason=f"Case {n}",
            reference=f"H-{n}",
            placed_by=world.employee_id,
            placed_at=world.at(n),
        )
        for n in numbers
    )


async def visits(world: World, numbers: range) -> None:
    await VisitEvent.bulk_create(
        VisitEvent(
            customer_id=world.customer_id,
            purpose="security",
            at=world.at(n),
            page=f"/page/{n}",
            action="view",
            browser="Chrome",
            os="Windows",
            device_type="desktop",
            ip_full="203.0.113.7",
            ip_truncated="203.0.113.0",
        )
        for n in numbers
    )


async def viewed_pages(world: World, numbers: range) -> None:
    """Pages viewed, each once, by a customer who consents to personalization."""
    if numbers.start == 0:
        await ConsentRecord.create(
            customer_id=world.customer_id,
            purpose="personalization",
            granted=True,
            source="account",
            at=world.at(0),
        )
    await VisitEvent.bulk_create(
        VisitEvent(
            customer_id=world.customer_id,
            purpose="analytics",
            at=world.at(n),
            page=f"/page/{n}",
            action="view",
        )
        for n in numbers
    )


async def consents(world: World, numbers: range) -> None:
    await ConsentRecord.bulk_create(
        ConsentRecord(
            customer_id=world.customer_id,
            purpose="analytics",
            granted=n % 2 == 0,
            source="account",
            at=world.at(n),
        )
        for n in numbers
    )


async def customers_with_their_lists(world: World, numbers: range) -> None:
    """Customers, each with an open case, consent records and visits; the first is the
    world's own customer (every customer listed has them)."""
    made = await customers(world, range(numbers.start or 1, numbers.stop))
    for customer_id in [world.customer_id] * (numbers.start == 0) + [c.id for c in made]:
        mine = World(world.services, world.clock, world.token, customer_id, world.employee_id)
        await support_cases(mine, range(2))
        await consents(mine, range(2))
        await visits(mine, range(3))


# -- the lists -----------------------------------------------------------------------------


TRANSITIONS = "transitions { fromStatus toStatus at actorKind reason }"
REQUEST = f"""id customerId kind status channel submittedAt receivedAt dueAt overdue extended
    completedAt outcome details changes before after {TRANSITIONS}"""
DISCLOSURE = "at recipient categories purpose legalBasis reference"
CASE = "id customerId subject message status assigneeId createdAt closedAt"
CONSENT = "purpose granted at source policyVersion"
VISIT = "id at purpose page action referrer campaign browser os deviceType language ip"
PAGE = "pageInfo { hasNextPage endCursor }"

MY_VISITS = f"""query($n: Int!) {{ me {{ visits(first: $n) {{
    edges {{ cursor node {{ {VISIT} }} }} {PAGE} }} }} }}"""

LISTINGS = [
    Listing(
        f"""query($n: Int!) {{ rightsRequests(first: $n) {{
            edges {{ cursor node {{ {REQUEST} }} }} {PAGE} }} }}""",
        "privacy_officer",
        rights_requests,
        ("rightsRequests",),
        most=4,
    ),
    Listing(
        f"""query($n: Int!) {{ disclosureLedger(first: $n) {{ edges {{ cursor node {{
            id customerId processorId nonDisclosureUntil recordedBy hash note {DISCLOSURE}
        }} }} {PAGE} }} }}""",
        "legal",
        disclosures,
        ("disclosureLedger",),
        most=3,
    ),
    Listing(
        """{ processors { id name contact country contractReference purposes categories
            activeFrom activeTo active updatedAt } }""",
        "legal",
        processors,
        ("processors",),
        most=2,
    ),
    Listing(
        f"""query($n: Int!) {{ accessDecisions(first: $n, filter: {{event: "access"}}) {{
            edges {{ cursor node {{ id at requestId actorKind actorId roles event operation
            category categories action subjectId subjectIds purpose decision rule reason
            conditions policyVersion hash }} }} {PAGE} }} }}""",
        "auditor",
        staff_accesses,
        ("accessDecisions",),
        most=3,
    ),
    Listing(
        f"{{ supportQueue {{ {CASE} }} }}",
        "customer_care",
        support_cases,
        ("supportQueue",),
        most=3,
    ),
    Listing(
        """query($n: Int!) { policyProposals(first: $n) { id kind change employeeId role
            status proposedBy proposedAt expiresAt decidedBy decidedAt decisionNote
            appliedVersion impact { decisionsReplayed toAllow toDeny customers } } }""",
        "privacy_officer",
        proposals,
        ("policyProposals",),
        most=6,
    ),
    Listing(
        """query($n: Int!) { policyChanges(first: $n) { version at kind change proposedBy
            approvedBy proposalId } }""",
        "auditor",
        policy_changes,
        ("policyChanges",),
        most=2,
    ),
    Listing(
        """query($n: Int!) { campaigns(first: $n) { id subject bodyText status createdAt
            sendStartedAt queuedAt recipients skipped delivered queued failed dead } }""",
        "marketing",
        campaigns,
        ("campaigns",),
        most=3,
    ),
    Listing(
        """query($customer: ID!) { legalHolds(customerId: $customer, activeOnly: false) {
            id customerId categories reason reference expiresAt placedBy placedAt
            releasedBy releasedAt active } }""",
        "legal",
        legal_holds,
        ("legalHolds",),
        most=4,
    ),
    Listing(
        f"""query($n: Int!) {{ customers(purpose: SUPPORT, first: $n) {{ edges {{ node {{
            id email supportCases {{ {CASE} }} }} }} }} }}""",
        "customer_care",
        customers_with_their_lists,
        ("customers",),
        most=5,
    ),
    Listing(
        f"""query($n: Int!) {{ customers(purpose: LEGAL, first: $n) {{ edges {{ node {{
            id email consentHistory {{ {CONSENT} }} }} }} }} }}""",
        "legal",
        customers_with_their_lists,
        ("customers",),
        most=5,
    ),
    Listing(
        f"""query($n: Int!) {{ customers(purpose: SECURITY, first: $n) {{ edges {{ node {{
            id visits(first: 2) {{ edges {{ cursor node {{ {VISIT} }} }} {PAGE} }}
        }} }} }} }}""",
        "fraud_analyst",
        customers_with_their_lists,
        ("customers",),
        most=5,
    ),
    Listing(  # the same cursor for every customer: still one query for their visits
        f"""query($n: Int!, $before: String!) {{ customers(purpose: SECURITY, first: $n) {{
            edges {{ node {{ id visits(first: 2, after: $before) {{
                edges {{ cursor node {{ {VISIT} }} }} {PAGE} }} }} }} }} }}""",
        "fraud_analyst",
        customers_with_their_lists,
        ("customers",),
        most=5,
    ),
    Listing(
        f"{{ me {{ rightsRequests {{ {REQUEST} }} }} }}",
        None,
        rights_requests,
        ("me", "rightsRequests"),
        most=5,
    ),
    Listing(
        f"{{ me {{ disclosures {{ {DISCLOSURE} }} }} }}",
        None,
        disclosures,
        ("me", "disclosures"),
        most=4,
    ),
    Listing(
        f"""query($n: Int!) {{ me {{ accessLog(first: $n) {{ edges {{ cursor node {{
            reference at roles purpose categories actions }} }} {PAGE} }} }} }}""",
        None,
        staff_accesses,
        ("me", "accessLog"),
        most=5,
    ),
    Listing(  # with each entry's evidence: the rows, leaves, checkpoint and proofs' nodes
        f"""query($n: Int!) {{ me {{ accessLog(first: $n) {{ edges {{ cursor node {{
            reference evidence {{ leaf subjectKey proof {{ leafIndex treeSize hashes
            checkpoint }} }} }} }} {PAGE} }} }} }}""",
        None,
        signed_staff_accesses,
        ("me", "accessLog"),
        most=9,
    ),
    Listing(
        MY_VISITS,
        None,
        visits,
        ("me", "visits"),
        most=4,
    ),
    Listing(
        "query($n: Int!) { me { recentlyViewed(first: $n) } }",
        None,
        viewed_pages,
        ("me", "recentlyViewed"),
        most=5,
    ),
    Listing(
        f"{{ me {{ consentHistory {{ {CONSENT} }} }} }}",
        None,
        consents,
        ("me", "consentHistory"),
        most=4,
    ),
    Listing(
        f"{{ me {{ supportCases {{ {CASE} }} }} }}",
        None,
        support_cases,
        ("me", "supportCases"),
        most=4,
    ),
]


async def reader(gql: GQL, services: Services, clock: FakeClock, role: str | None) -> World:
    """A signed-in reader, and the customer the rows are about: the customer themselves,
    or an employee of `role` reading about a customer written straight to the database."""
    token, employee_id = await signed_in_employee(gql, services, role or "admin")
    world = World(services, clock, token, UUID(int=0), UUID(employee_id))
    if role is None:
        await register(gql)
        world.token = await login(gql)
        world.customer_id = (await Customer.get(email="jane.doe@example.com")).id
    else:
        world.customer_id = (await customers(world, range(1000, 1001)))[0].id
    gql.client.cookies.clear()
    return world


@pytest.mark.parametrize("listing", LISTINGS, ids=str)
async def test_a_list_reads_in_the_same_statements_whatever_its_length(
    listing: Listing,
    gql: GQL,
    services: Services,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a reader allowed to read the list
    world = await reader(gql, services, clock, listing.role)

    async def read(n: int) -> list[str]:
        now = f"{world.clock.now().isoformat()}|{2**62}"  # every visit is older
        variables = {"n": n, "customer": str(world.customer_id), "before": cursor("visit", now)}
        with statements(caplog) as sql:
            body = await gql(listing.query, variables, token=world.token)
        assert "errors" not in body, body
        assert len(listing.items(body["data"])) == n
        return sql

    # when it holds (or is asked for) 1, 10 and then 100 rows
    await listing.rows(world, range(1))
    await read(1)  # warm: the session's idle expiry may slide once
    done = {1: await read(1)}
    for before, n in itertools.pairwise(SIZES):
        await listing.rows(world, range(before, n))
        done[n] = await read(n)
    # then each read takes the same SELECTs, and few (the lock PostgreSQL takes to append
    # to the decision log reads nothing), and the same statements, the log's writes included
    reads = {
        n: [s for s in sql if s.startswith("SELECT") and "pg_advisory" not in s]
        for n, sql in done.items()
    }
    assert len(reads[1]) == len(reads[10]) == len(reads[100]), reads
    assert len(reads[100]) <= listing.most, reads[100]
    assert len(done[1]) == len(done[10]) == len(done[100]), done


async def test_a_read_expires_any_number_of_proposals_in_the_same_statements(
    gql: GQL, services: Services, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # given a privacy officer, whose reads of proposals expire those past their expiry
    world = await reader(gql, services, clock, "privacy_officer")
    query = '{ policyProposals(status: "expired", first: 200) { id status } }'
    await gql(query, token=world.token)  # warm: the session's idle expiry may slide once
    counts = {}
    # when 1, then 9 and then 90 more proposals are due at a read
    for before, n in itertools.pairwise((0, *SIZES)):
        await proposals(world, range(before, n), due=True)
        with statements(caplog) as sql:
            body = await gql(query, token=world.token)
        assert len(body["data"]["policyProposals"]) == n, body
        counts[n] = len(sql)
    # then each read expires them (and logs each) in the same statements, writes included
    assert counts[1] == counts[10] == counts[100], counts
    assert await AuditEvent.filter(operation="expirePolicyProposal").count() == 100


async def test_a_page_of_visits_is_read_without_a_list_of_their_ids(
    gql: GQL, services: Services, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # given a customer with 100 visits
    world = await reader(gql, services, clock, None)
    await visits(world, range(100))
    await gql(MY_VISITS, {"n": 1}, token=world.token)  # warm

    async def read(n: int) -> list[str]:
        with statements(caplog) as sql:
            body = await gql(MY_VISITS, {"n": n}, token=world.token)
        assert len(body["data"]["me"]["visits"]["edges"]) == n
        return sql

    # when a page of 1 and a page of 100 are read
    one, hundred = await read(1), await read(100)
    # then they are the same statements: the events come with their ranking, not by a
    # second statement naming each (a page of 200 customers' 200 visits would name more
    # ids than PostgreSQL takes parameters)
    assert one == hundred
