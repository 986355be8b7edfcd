"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when
TEST_DATABASE_URL is set (see tests/pgcluster.py and `make test`)."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
from pydantic import SecretStr
from tortoise import Tortoise, connections

from api.app import create_app
from api.clock import FakeClock
from api.db import close_db, init_db, migrate
from api.policy.service import seed_first_version
from api.retention.rules import seed_default_rules
from api.services import Services, build_services
from api.settings import Settings
from api.staff.service import create_employee
from authz import separation
from authz.registry import VALUE_BLIND_ROLES
from models import VIEWS, Customer, EmployeeRole, OutboxMessage, PolicyRule
from tests import log_scan
from tests.consent_invariant import assert_current_is_latest
from tests.fact_invariant import assert_facts_hold
from tests.migration_helpers import fresh_database  # noqa: F401 (a fixture for every test module)

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
# The log's signing keys and published checkpoints of this test run, never the checkout's
# data/ (every `custos` process the tests start inherits these).
_LOG_FILES = Path(tempfile.mkdtemp(prefix="custos-test-log-"))
os.environ.setdefault("CUSTOS_AUDIT_KEY_DIR", str(_LOG_FILES / "keys"))
os.environ.setdefault("CUSTOS_AUDIT_CHECKPOINT_DIR", str(_LOG_FILES / "checkpoints"))
CLIENT_IP = "203.0.113.7"
# Privacy policy version 1 is in effect well before the test clock starts.
POLICY_SEEDED_AT = FakeClock().now() - timedelta(days=365)


def pytest_configure(config: pytest.Config) -> None:
    log_scan.install(config)
    # Property-based tests explore new examples on every local run; CI replays a fixed
    # sequence, so that a landing never depends on the draw (a find there is reproducible).
    hypothesis.settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        hypothesis.settings.load_profile("ci")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    log_scan.report(session)


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    directory = Path(tempfile.mkdtemp(prefix="custos-test-"))
    return f"sqlite://{directory / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def database_url() -> str:
    return _database_url()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    """Test settings: argon2 at the floor of docs/ARCHITECTURE.md: security floor so the suite
    stays fast."""
    return Settings(
        env="development",
        database_url=database_url,
        secret_key=SecretStr(TEST_SECRET),
        argon2_time_cost=2,
        argon2_memory_kib=19 * 1024,
        argon2_parallelism=1,
        # Only the count bounds the hashing queue: a machine loaded by other suites must not
        # turn the estimated wait into refusals (tests/test_hash_queue.py tests the bound).
        hash_queue_seconds=0,
        # Every request looks its viewer up: tests that compare the statements of two
        # requests must not depend on whether a 1 s cache entry is still fresh
        # (tests/test_viewer_cache.py tests the cache; real servers keep the default).
        viewer_cache_seconds=0,
        mail_poll_seconds=0,
        public_url="https://shop.example.test",
    )


@pytest.fixture(scope="session", autouse=True)
async def database(database_url: str) -> AsyncIterator[None]:
    await init_db(database_url)
    await migrate(database_url, now=POLICY_SEEDED_AT)
    yield
    await close_db()


# The seeded access policy stays from test to test; a test that edits it restores it. A
# view (models.VIEWS) holds no rows to empty.
_KEPT = {"policy_rule", "policy_version", *VIEWS}


def _tables() -> list[str]:
    tables = [model._meta.db_table for model in Tortoise.apps["models"].values()]
    return [t for t in tables if t not in _KEPT]


async def _truncate(conn: Any, statement: str) -> None:
    """TRUNCATE, again if PostgreSQL chose it as a deadlock's victim: a live server of a
    browser test may still be answering a request the page sent last, its transaction
    holding one table while TRUNCATE holds another. The request then finishes, and the
    second TRUNCATE finds the tables free."""
    for attempt in range(5):
        try:
            await conn.execute_script(statement)
            return
        except Exception as exc:
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture(autouse=True)
async def clean_tables(database: None) -> AsyncIterator[None]:
    yield
    try:
        # whatever the test wrote, the triggers kept each purpose's latest consent record,
        # and each customer's facts
        await assert_current_is_latest()
        await assert_facts_hold()
    finally:
        await _empty_tables()


async def _empty_tables() -> None:
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        await _truncate(conn, f"TRUNCATE {', '.join(_tables())} RESTART IDENTITY CASCADE")
    else:
        for table in _tables():
            await conn.execute_script(f"DELETE FROM {table}")
    await seed_first_version(now=POLICY_SEEDED_AT)  # as `migrate` left it
    await seed_default_rules(now=POLICY_SEEDED_AT)


@pytest.fixture
async def restore_policy(services: Services) -> AsyncIterator[None]:
    """The seeded policy stays between tests (clean_tables): put back what a test changed."""
    before = (
        await PolicyRule.all().order_by("id").values("ptype", "v0", "v1", "v2", "v3", "v4", "v5")
    )
    yield
    after = (
        await PolicyRule.all().order_by("id").values("ptype", "v0", "v1", "v2", "v3", "v4", "v5")
    )
    if after != before:
        await PolicyRule.all().delete()
        await PolicyRule.bulk_create([PolicyRule(**row) for row in before])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    built = build_services(settings, clock=clock)
    await built.load_authorizer()
    yield built
    built.close()


@pytest.fixture
def app(settings: Settings, services: Services) -> Any:
    return create_app(settings, services=services, manage_db=False)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


class GQL:
    """Posts GraphQL over real HTTP through the ASGI app."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def raw(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = await self.raw(query, variables, token)
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GQL:
    return GQL(client)


REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) {
    __typename
    ... on RegistrationAccepted { message }
    ... on InputError { code field message fields { field code message } }
  }
}
"""

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    __typename
    ... on LoginSuccess { token expiresAt customer { id email } }
    ... on InvalidCredentials { code message }
  }
}
"""

STAFF_LOGIN = """
mutation StaffLogin($email: String!, $password: String!) {
  staffLogin(email: $email, password: $password) {
    __typename
    ... on StaffLoginSuccess { token expiresAt employee { id email roles } }
    ... on InvalidCredentials { code message }
  }
}
"""

VERIFY_EMAIL = """
mutation Verify($token: String!) {
  verifyEmail(token: $token) {
    __typename
    ... on EmailVerified { customer { email emailVerified } }
    ... on TokenError { code message }
  }
}
"""

ME = """
{ me { id email emailVerified pendingEmail phone
       address { line1 line2 city postalCode country } consents { purpose granted source } } }
"""

PASSWORD = "correct horse battery staple"


def registration(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "email": "jane.doe@example.com",
        "password": PASSWORD,
        "phone": "+44 20 7946 0958",
        "address": {
            "line1": "221B Baker Street",
            "city": "London",
            "postalCode": "NW1 6XE",
            "country": "GB",
        },
    }
    data.update(overrides)
    return data


async def register(gql: GQL, **overrides: Any) -> dict[str, Any]:
    body = await gql(REGISTER, {"input": registration(**overrides)})
    result: dict[str, Any] = body["data"]["register"]
    return result


async def login(gql: GQL, email: str = "jane.doe@example.com", password: str = PASSWORD) -> str:
    body = await gql(LOGIN, {"email": email, "password": password})
    assert body["data"]["login"]["__typename"] == "LoginSuccess", body
    token: str = body["data"]["login"]["token"]
    return token


async def mails(kind: str | None = None, recipient: str | None = None) -> list[OutboxMessage]:
    query = OutboxMessage.all().order_by("id")
    if kind:
        query = query.filter(kind=kind)
    if recipient:
        query = query.filter(recipient=recipient)
    return await query


async def signed_in_employee(
    gql: GQL, services: Services, *roles: str, name: str | None = None
) -> tuple[str, str]:
    """(token, id) of a new employee holding `roles`, signed in over the API once this
    process's policy knows the grants."""
    name = name or "-".join(roles) or "staff"
    email = f"{name}@staff.example.com"
    # Admin or auditor with a personal-data role is refused at creation; such an employee
    # can still exist in old data, so a test that wants one gets the rest written directly.
    mixed = separation.mixes_duties(roles)
    created_with = [r for r in roles if r not in VALUE_BLIND_ROLES] if mixed else list(roles)
    created = await create_employee(
        services=services, email=email, name=name, roles=created_with, password=PASSWORD
    )
    for role in set(roles) - set(created_with):
        await EmployeeRole.create(
            employee_id=created.id, role=role, granted_at=services.clock.now()
        )
    await services.authorizer.reload()
    body = await gql(STAFF_LOGIN, {"email": email, "password": PASSWORD})
    token: str = body["data"]["staffLogin"]["token"]
    return token, str(created.id)


_TOKEN_IN_MAIL = re.compile(r"verifyEmail operation: (\S+)")


async def verification_token(recipient: str) -> str:
    messages = await mails("verify_email", recipient)
    assert messages, f"no verification mail to {recipient}"
    match = _TOKEN_IN_MAIL.search(messages[-1].body_text)
    assert match
    return match.group(1)


def unsaved_customer(
    n: int, *, at: datetime, email: str | None = None, phone: str | None = None
) -> Customer:
    """Customer number `n` (verified, at time `at`), not yet saved: for bulk_create."""
    return Customer(
        email=email or f"jane{n}@example.com",
        password_hash="x",
        phone=phone or f"+4420794601{n:02d}",
        address_line1=f"{n} Baker Street",
        address_city="London",
        address_postal_code="NW1 6XE",
        address_country="GB",
        email_verified_at=at,
        created_at=at,
        updated_at=at,
    )


async def stored_customer(n: int = 0, *, at: datetime) -> Customer:
    """Customer number `n`, written straight to the database (verified, at time `at`)."""
    customer = unsaved_customer(n, at=at)
    await customer.save()
    return customer
