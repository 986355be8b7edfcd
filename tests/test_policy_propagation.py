"""A policy change on one process reaches every other process sharing the database within
2 s: PostgreSQL LISTEN/NOTIFY between two real servers, and the version poll without it.
A narrowing change travels when it is made, a widening one when a privacy officer
approves it; and the admin's escalation of issue 14 leaves them reading nothing on any
process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from tortoise import connections

import authz.watcher
from api.access import proposals
from api.access.changes import Change
from api.access.rules import Rule
from api.access.service import submit
from api.services import Services
from api.staff.service import create_employee
from authz.adapter import current_version, employee_subject
from authz.enforcer import Authorizer
from authz.watcher import run_policy_watcher
from models import Employee, SupportCase
from tests.access_helpers import ADD_RULE, APPROVE, GRANT, REMOVE_RULE, REVOKE, rule
from tests.conftest import PASSWORD, STAFF_LOGIN, stored_customer
from tests.real_servers import servers

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "{ supportQueue { id } }"
RULES = "{ policyRules { role category action purpose condition effect } }"
READ = "query($id: ID!, $p: Purpose!) { customer(id: $id, purpose: $p) { email phone } }"
WITHIN = 2.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROPOSAL_DAYS = 7


def _postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


async def _until(check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until `check` holds; fails after 10 s."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < 10, "condition never held"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@contextlib.contextmanager
def _servers(database_url: str, count: int, poll_seconds: float = 60) -> Iterator[list[str]]:
    """`count` real servers on the database; the poll is slowed to 60 s by default, so
    only NOTIFY can carry a change within 2 s. Always terminated."""
    with servers(database_url, count, CUSTOS_POLICY_POLL_SECONDS=str(poll_seconds)) as started:
        yield [server.url for server in started]


class Server:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def gql(self, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
        body: dict[str, Any] = response.json()
        return body

    async def sign_in(self, email: str) -> str:
        variables = {"email": email, "password": PASSWORD}
        response = await self.client.post(
            "/graphql", json={"query": STAFF_LOGIN, "variables": variables}
        )
        token: str = response.json()["data"]["staffLogin"]["token"]
        return token

    async def queue_allowed(self, token: str) -> bool:
        body = await self.gql(QUEUE, {}, token)
        if body.get("data") == {"supportQueue": []}:
            return True
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        return False

    async def has_rule(self, token: str, wanted: dict[str, str]) -> bool:
        """Whether this server enforces `wanted` (as its policyRules list it)."""
        body = await self.gql(RULES, {}, token)
        return wanted in body["data"]["policyRules"]

    async def reads_nothing(self, token: str, customer_id: str) -> None:
        """A real read of a customer's email and phone: null, FORBIDDEN for VALUE_BLIND_ROLE."""
        for purpose in ("SUPPORT", "LEGAL"):
            body = await self.gql(READ, {"id": customer_id, "p": purpose}, token)
            assert body["data"]["customer"] == {"email": None, "phone": None}, body
            errors = {(e["extensions"]["code"], e["extensions"]["reason"]) for e in body["errors"]}
            assert errors == {("FORBIDDEN", "VALUE_BLIND_ROLE")}, body["errors"]


@pytest.fixture
async def two_servers(database_url: str) -> AsyncIterator[tuple[Server, Server]]:
    if not _postgres():
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite processes follow the version poll")
    with _servers(database_url, 2) as (a, b):
        async with httpx.AsyncClient(base_url=a) as ca, httpx.AsyncClient(base_url=b) as cb:
            yield Server(ca), Server(cb)


async def _employee(services: Services, name: str, *roles: str) -> Employee:
    """An employee `name`@staff.example.com holding `roles`, created while servers run."""
    return await create_employee(
        services=services,
        email=f"{name}@staff.example.com",
        name=name,
        roles=list(roles),
        password=PASSWORD,
    )


def _proposal_id(body: dict[str, Any], field: str) -> str:
    payload = body["data"][field]
    assert payload["__typename"] == "PolicyChangeProposed", body
    proposal_id: str = payload["proposal"]["id"]
    return proposal_id


async def _approved_on(server: Server, proposal_id: str, token: str) -> None:
    body = await server.gql(APPROVE, {"id": proposal_id}, token)
    assert body["data"]["approvePolicyProposal"]["__typename"] == "PolicyProposalDecided", body


@pytest.fixture
async def two_polling_servers(database_url: str) -> AsyncIterator[tuple[Server, Server]]:
    """Two servers that also poll the version every 0.2 s: on either database."""
    with _servers(database_url, 2, poll_seconds=0.2) as (a, b):
        async with httpx.AsyncClient(base_url=a) as ca, httpx.AsyncClient(base_url=b) as cb:
            yield Server(ca), Server(cb)


async def test_a_revocation_and_an_approved_grant_on_one_server_reach_the_other_within_2_seconds(
    two_servers: tuple[Server, Server], services: Services
) -> None:
    a, b = two_servers
    # given an admin, a privacy officer and a care agent, created while both servers run
    await _employee(services, "root", "admin")
    await _employee(services, "po", "privacy_officer")
    agent = await _employee(services, "cara", "customer_care")
    admin = await a.sign_in("root@staff.example.com")
    officer = await a.sign_in("po@staff.example.com")
    care = await b.sign_in("cara@staff.example.com")
    assert await _until(lambda: b.queue_allowed(care)) < WITHIN  # the creation reached B too
    grant = {"e": str(agent.id), "r": "customer_care"}
    # when the admin revokes customer care on server A (narrowing: applied at once)
    body = await a.gql(REVOKE, grant, admin)
    assert body["data"]["revokeRole"]["__typename"] == "RoleChanged"
    # then A refuses the agent at once, and B within 2 s
    assert not await a.queue_allowed(care)
    assert await _until(lambda: _not(b.queue_allowed(care))) < WITHIN
    # when the admin grants it again, it is a proposal: neither server allows the agent
    version = await current_version()
    proposal_id = _proposal_id(await a.gql(GRANT, grant, admin), "grantRole")
    assert not await a.queue_allowed(care)
    assert not await b.queue_allowed(care)
    assert await current_version() == version
    # when the privacy officer approves it on A, A allows the agent at once, B within 2 s
    await _approved_on(a, proposal_id, officer)
    assert await a.queue_allowed(care)
    assert await _until(lambda: b.queue_allowed(care)) < WITHIN


async def test_an_approved_rule_on_one_server_reaches_the_other_within_2_seconds(
    two_servers: tuple[Server, Server], services: Services, restore_policy: None
) -> None:
    a, b = two_servers
    # given an admin, a privacy officer and a legal employee, who may not read the queue
    await _employee(services, "root", "admin")
    await _employee(services, "po", "privacy_officer")
    await _employee(services, "ann", "legal")
    admin = await a.sign_in("root@staff.example.com")
    officer = await a.sign_in("po@staff.example.com")
    ann = await b.sign_in("ann@staff.example.com")
    assert not await b.queue_allowed(ann)
    # when the admin proposes on A that legal read support cases, nothing changes on B
    legal_reads = rule("legal", "support.cases", "read", "support", "*", "allow")
    proposal_id = _proposal_id(await a.gql(ADD_RULE, {"i": legal_reads}, admin), "addPolicyRule")
    assert not await b.queue_allowed(ann)
    # when the privacy officer approves it on A, B allows the employee within 2 s
    await _approved_on(a, proposal_id, officer)
    assert await _until(lambda: b.queue_allowed(ann)) < WITHIN
    # and its removal on A (narrowing: applied at once) reaches B within 2 s
    body = await a.gql(REMOVE_RULE, {"i": legal_reads}, admin)
    assert body["data"]["removePolicyRule"]["__typename"] == "PolicyRuleChanged"
    assert await _until(lambda: _not(b.queue_allowed(ann))) < WITHIN


async def test_the_escalation_on_one_server_leaves_the_admin_reading_nothing_on_the_other(
    two_polling_servers: tuple[Server, Server], services: Services, restore_policy: None
) -> None:
    a, b = two_polling_servers
    # given two admins, a privacy officer and a customer with an open case
    root = await _employee(services, "root", "admin")
    await _employee(services, "toor", "admin")
    await _employee(services, "po", "privacy_officer")
    customer = await stored_customer(1, at=T0)
    await SupportCase.create(customer=customer, subject="Ring", message="Where?", created_at=T0)
    admin, other = (
        await a.sign_in("root@staff.example.com"),
        await a.sign_in("toor@staff.example.com"),
    )
    officer = await a.sign_in("po@staff.example.com")
    on_b = await b.sign_in("root@staff.example.com")
    # when, on server A, the admin removes their contact deny, allows themself contact data,
    # support messages, consents and then everything
    own_rules = [
        (REMOVE_RULE, rule("admin", "contact.*", "*", "*", "*", "deny"), "removePolicyRule"),
        (ADD_RULE, rule("admin", "contact.*", "read", "support", "*", "allow"), "addPolicyRule"),
        (ADD_RULE, rule("admin", "support.cases", "read", "*", "*", "allow"), "addPolicyRule"),
        (
            ADD_RULE,
            rule("admin", "consent.history", "read", "legal", "*", "allow"),
            "addPolicyRule",
        ),
        (ADD_RULE, rule("admin", "*", "*", "*", "*", "allow"), "addPolicyRule"),
    ]
    codes = [
        (await a.gql(query, {"i": change}, admin))["data"][field]["code"]
        for query, change, field in own_rules
    ]
    # then each is refused (rules of their own role)
    assert codes == ["SEPARATION_OF_DUTIES"] * len(own_rules)
    # when they widen customer care instead, which the privacy officer approves, and then
    # grant themself customer care or have the other admin grant it
    care_reads = rule("customer_care", "contact.*", "read", "support", "*", "allow")
    proposal_id = _proposal_id(await a.gql(ADD_RULE, {"i": care_reads}, admin), "addPolicyRule")
    await _approved_on(a, proposal_id, officer)
    grant = {"e": str(root.id), "r": "customer_care"}
    grants = [(await a.gql(GRANT, grant, token))["data"]["grantRole"] for token in (admin, other)]
    # then both grants are refused for separation of duties
    assert [(g["__typename"], g["code"]) for g in grants] == [
        ("InputError", "SEPARATION_OF_DUTIES")
    ] * 2
    # and once B enforces the approved rule, the admin reads nothing on B, nor on A
    assert await _until(lambda: b.has_rule(on_b, care_reads)) < WITHIN
    await b.reads_nothing(on_b, str(customer.id))
    await a.reads_nothing(admin, str(customer.id))


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


async def _watch(other: Authorizer, database_url: str, poll_seconds: float) -> asyncio.Task[None]:
    return asyncio.create_task(
        run_policy_watcher(authorizer=other, database_url=database_url, poll_seconds=poll_seconds)
    )


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _has_care(other: Authorizer, employee_id: object) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return "customer_care" in other.roles_of(employee_id)

    return check


async def _staff(services: Services) -> tuple[UUID, UUID, Employee]:
    """An admin's and a privacy officer's ids, and a legal employee whose roles change."""
    admin = await _employee(services, "root", "admin")
    officer = await _employee(services, "po", "privacy_officer")
    return admin.id, officer.id, await _employee(services, "ann", "legal")


async def _granted(services: Services, agent: Employee, *, admin: UUID, officer: UUID) -> None:
    """Customer care for `agent`: proposed by the admin, approved by the privacy officer."""
    now = services.clock.now()
    grant = Change("grant_role", employee_id=agent.id, role="customer_care")
    done = await submit(grant, by=admin, now=now, proposal_days=PROPOSAL_DAYS)
    assert done.proposal is not None
    assert not done.applied
    await proposals.approve(done.proposal.id, by=officer, now=now)


async def test_without_notify_the_version_poll_carries_a_change(
    services: Services, database_url: str, monkeypatch: pytest.MonkeyPatch, restore_policy: None
) -> None:
    # given another process's authorizer whose watcher cannot LISTEN (as on SQLite)
    monkeypatch.setattr(authz.watcher, "listen_params", lambda _url: None)
    admin, officer, agent = await _staff(services)
    other = await Authorizer.load()
    task = await _watch(other, database_url, poll_seconds=0.2)
    now = services.clock.now()
    try:
        # when an admin grants customer care here, it is a proposal: nothing moves
        version = await current_version()
        grant = Change("grant_role", employee_id=agent.id, role="customer_care")
        done = await submit(grant, by=admin, now=now, proposal_days=PROPOSAL_DAYS)
        assert (done.applied, done.created) == (False, True)
        assert done.proposal is not None
        await asyncio.sleep(0.6)  # three turns of the poll
        assert not await _has_care(other, agent.id)()
        assert await current_version() == version
        # when a privacy officer approves it, the other authorizer has it within 2 s
        await proposals.approve(done.proposal.id, by=officer, now=now)
        assert await _until(_has_care(other, agent.id)) < WITHIN
        # and a revocation, applied at once, too
        revoke = Change("revoke_role", employee_id=agent.id, role="customer_care")
        done = await submit(revoke, by=admin, now=now, proposal_days=PROPOSAL_DAYS)
        assert done.applied
        assert await _until(lambda: _not(_has_care(other, agent.id)())) < WITHIN
        # and an allow rule approved, then removed at once
        legal_reads = Change(
            "add_rule", rule=Rule("legal", "support.cases", "read", "support", "*", "allow")
        )
        done = await submit(legal_reads, by=admin, now=now, proposal_days=PROPOSAL_DAYS)
        assert done.proposal is not None
        await proposals.approve(done.proposal.id, by=officer, now=now)
        assert await _until(_legal_reads_cases(other, agent.id)) < WITHIN
        removal = Change("remove_rule", rule=legal_reads.rule)
        done = await submit(removal, by=admin, now=now, proposal_days=PROPOSAL_DAYS)
        assert done.applied
        assert await _until(lambda: _not(_legal_reads_cases(other, agent.id)())) < WITHIN
    finally:
        await _stop(task)


def _legal_reads_cases(other: Authorizer, employee_id: object) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return other.decide(
            subject=employee_subject(str(employee_id)),
            category="support.cases",
            action="read",
            purpose="support",
        ).allowed

    return check


async def test_a_lost_listen_connection_is_reestablished(
    services: Services, database_url: str
) -> None:
    if not _postgres():
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    admin, officer, agent = await _staff(services)
    other = await Authorizer.load()
    task = await _watch(other, database_url, poll_seconds=60)  # only NOTIFY can be in time
    try:
        first = await _until_listening(set())
        # when the database drops the watcher's connection, the watcher connects again
        conn = connections.get("default")
        await conn.execute_query("SELECT pg_terminate_backend($1)", [first.pop()])
        await _until_listening(first)
        # and an approved change still arrives by NOTIFY within 2 s
        await _granted(services, agent, admin=admin, officer=officer)
        assert await _until(_has_care(other, agent.id)) < WITHIN
    finally:
        await _stop(task)


async def _until_listening(old: set[int]) -> set[int]:
    """The pids of LISTEN connections, once there is one not in `old`."""
    pids: set[int] = set()

    async def check() -> bool:
        rows = await connections.get("default").execute_query_dict(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
        )
        pids.clear()
        pids.update(int(r["pid"]) for r in rows)
        return bool(pids - old)

    await _until(check)
    return pids - old


async def _rows(query: Awaitable[list[dict[str, Any]]]) -> bool:
    return bool(await query)
