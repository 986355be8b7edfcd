"""`GET /metrics` (docs/OBSERVABILITY.md): counters after a scripted workload through the
real ASGI app, the database gauges against the database, the route's protection (a bearer
token, else loopback only), bounded operation labels, and multi-process mode with two real
servers sharing one PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.app import create_app
from api.audit.log_config import log_config
from api.observability import metrics, request_log
from api.retention.purge import run_retention
from api.rights.rules import RUNNING
from api.services import Services
from api.settings import Settings
from api.version import VERSION
from authz import checkpoints, log_tree
from authz.adapter import current_version
from models import AuditEvent, OutboxMessage, RecipientNotice, RightsRequest, SupportCase
from tests.conftest import (
    CLIENT_IP,
    GQL,
    login,
    register,
    signed_in_employee,
    stored_customer,
)
from tests.real_servers import servers

ONE = "query($id: ID!) { customer(id: $id, purpose: SUPPORT) { id email } }"
TOKEN = "metrics-token-0123456789-abcdef"


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def series(text: str, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _client(app: Any, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40001))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


@pytest.fixture
async def local(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the loopback interface (the scraper of a server without a token)."""
    async with _client(app, "127.0.0.1") as client:
        yield client


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def delta(before: str, after: str, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_a_workload_shows_in_the_counters(
    gql: GQL, services: Services, local: httpx.AsyncClient
) -> None:
    # given a customer with an open support case and one without, and a customer-care agent
    seen = await stored_customer(1, at=services.clock.now())
    await SupportCase.create(
        customer=seen, subject="Ring", message="Where?", created_at=seen.created_at
    )
    unseen = await stored_customer(2, at=services.clock.now())
    token, _ = await signed_in_employee(gql, services, "customer_care")
    before = await scrape(local)
    # when a customer registers (a mail is queued) and signs in, the agent reads the customer
    # with a case (allowed) and the one without (denied: no open case), and a client sends a
    # document that does not parse
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    await login(gql)
    allowed = await gql(ONE, {"id": str(seen.id)}, token=token)
    assert allowed["data"]["customer"]["email"] == seen.email
    denied = await gql(ONE, {"id": str(unseen.id)}, token=token)
    [error] = denied["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    bad = await gql.raw("{ customer(")
    assert bad.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    after = await scrape(local)

    # then each request is counted by its root field and outcome, and timed
    requests = "custos_requests_total"
    graphql = {"route": "/graphql"}
    assert delta(before, after, requests, **graphql, operation="register", outcome="ok") == 1
    assert delta(before, after, requests, **graphql, operation="login", outcome="ok") == 1
    assert delta(before, after, requests, **graphql, operation="customer", outcome="ok") == 1
    assert delta(before, after, requests, **graphql, operation="customer", outcome="denied") == 1
    assert delta(before, after, requests, **graphql, operation="anonymous", outcome="refused") == 1
    timed = "custos_request_duration_seconds_count"
    assert delta(before, after, timed, route="/graphql", operation="customer") == 2
    assert delta(before, after, requests, route="/metrics", operation="-", outcome="ok") == 1
    # and the decisions by role, the denial by the reason the client was given
    decisions = "custos_access_decisions_total"
    assert delta(before, after, decisions, decision="allow", role="customer_care") >= 1
    assert delta(before, after, decisions, decision="deny", role="customer_care") >= 1
    assert delta(before, after, decisions, role="customer") >= 1  # the customer's sign-in
    reason = error["extensions"]["reason"]
    assert delta(before, after, "custos_access_denials_total", reason=reason) >= 1
    # and the version is there
    assert value(after, "custos_build_info", version=VERSION) == 1
    assert value(after, "custos_metrics_database_ok") == 1
    queued = await OutboxMessage.filter(status__in=["pending", "sending"]).count()
    assert queued >= 1
    assert value(after, "custos_outbox_pending_messages") == queued


async def test_an_operation_refused_for_the_role_is_a_denial(
    gql: GQL, services: Services, local: httpx.AsyncClient
) -> None:
    token, _ = await signed_in_employee(gql, services, "marketing")
    before = await scrape(local)
    body = await gql("{ verifyAuditLog { ok } }", token=token)
    assert body["errors"][0]["extensions"]["reason"] == "ROLE_REQUIRED"
    after = await scrape(local)
    assert delta(before, after, "custos_access_denials_total", reason="ROLE_REQUIRED") == 1
    assert (
        delta(before, after, "custos_access_decisions_total", decision="deny", role="marketing")
        == 1
    )
    labels = {"operation": "verifyAuditLog", "outcome": "denied"}
    assert delta(before, after, "custos_requests_total", **labels) == 1


async def test_the_database_gauges_are_the_databases(
    services: Services, local: httpx.AsyncClient
) -> None:
    now = services.clock.now()
    customer = await stored_customer(1, at=now)
    # given mail: one due two minutes ago, one failed and waiting to retry, one dead, one sent
    mail: dict[str, Any] = {
        "kind": "k",
        "recipient": "r@example.com",
        "subject": "s",
        "body_text": "b",
    }
    await OutboxMessage.create(**mail, next_attempt_at=now - timedelta(minutes=2), created_at=now)
    await OutboxMessage.create(
        **mail, attempts=2, next_attempt_at=now + timedelta(minutes=5), created_at=now
    )
    await OutboxMessage.create(**mail, status="dead", next_attempt_at=now, created_at=now)
    await OutboxMessage.create(**mail, status="sent", next_attempt_at=now, created_at=now)
    # and rights requests: open and due later, open and overdue, completed and overdue
    request: dict[str, Any] = {
        "customer": customer,
        "kind": "access",
        "channel": "account",
        "submitted_at": now,
    }
    await RightsRequest.create(**request, status="pending", due_at=now + timedelta(days=3))
    await RightsRequest.create(**request, status="in_progress", due_at=now - timedelta(days=1))
    await RightsRequest.create(**request, status="completed", due_at=now - timedelta(days=9))
    # and a retention run (its summary rows go to the decision log)
    await run_retention(services=services, dry_run=False)
    text = await scrape(local)

    assert value(text, "custos_outbox_pending_messages") == 2
    assert value(text, "custos_outbox_failed_messages") == 1
    assert value(text, "custos_outbox_dead_messages") == 1
    assert value(text, "custos_outbox_oldest_pending_age_seconds") == 120
    assert (
        value(text, "custos_rights_requests_open")
        == await RightsRequest.filter(status__in=list(RUNNING)).count()
    )
    assert value(text, "custos_rights_requests_open") == 2
    assert value(text, "custos_rights_requests_overdue") == 1
    assert value(text, "custos_audit_rows") == await AuditEvent.all().count() > 0
    assert value(text, "custos_audit_tree_size") == await log_tree.size()
    assert value(text, "custos_audit_checkpoint_size") == 0
    assert value(text, "custos_audit_checkpoint_timestamp_seconds") == 0
    assert value(text, "custos_retention_last_run_timestamp_seconds") == now.timestamp()
    assert value(text, "custos_policy_version_loaded") == services.authorizer.version
    assert value(text, "custos_policy_version_latest") == await current_version()

    # when more rows are logged, the next scrape counts them (only the new ones are read)
    await run_retention(services=services, dry_run=False)
    signed = await checkpoints.sign(log_config(services.settings), now, force=True)
    again = await scrape(local)
    assert value(again, "custos_audit_rows") == await AuditEvent.all().count()
    assert value(again, "custos_audit_tree_size") == signed.size > 0
    assert value(again, "custos_audit_checkpoint_size") == signed.size
    assert value(again, "custos_audit_checkpoint_timestamp_seconds") == now.timestamp()


async def test_a_successful_verify_is_the_time_shown(local: httpx.AsyncClient) -> None:
    metrics.note_audit_verified(True, at=1_700_000_000.5)
    metrics.note_audit_verified(False)  # a broken chain is not a verify
    text = await scrape(local)
    assert value(text, "custos_audit_last_verify_timestamp_seconds") == 1_700_000_000.5


async def test_without_a_token_only_loopback_clients_are_answered(
    app: Any, client: httpx.AsyncClient, local: httpx.AsyncClient
) -> None:
    # a client elsewhere: as if there were no such route
    refused = await client.get("/metrics")
    assert refused.status_code == 404
    assert "custos_" not in refused.text
    # a request through a proxy on the same host is from elsewhere too
    assert (await local.get("/metrics", headers={"X-Forwarded-For": CLIENT_IP})).status_code == 404
    assert (await local.get("/metrics", headers={"Forwarded": "for=1.2.3.4"})).status_code == 404
    # loopback, IPv4 or IPv6
    assert (await local.get("/metrics")).status_code == 200
    async with _client(app, "::1") as six:
        assert (await six.get("/metrics")).status_code == 200


async def test_with_a_token_a_scraper_needs_it(settings: Settings, services: Services) -> None:
    guarded = settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    app = create_app(guarded, services=services, manage_db=False)
    for host in (CLIENT_IP, "127.0.0.1"):
        async with _client(app, host) as client:
            missing = await client.get("/metrics")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
            assert wrong.status_code == 401
            basic = await client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
            assert basic.status_code == 401
            right = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert right.status_code == 200
            assert "custos_build_info" in right.text


async def test_metrics_can_be_turned_off(settings: Settings, services: Services) -> None:
    off = settings.model_copy(update={"metrics_enabled": False})
    app = create_app(off, services=services, manage_db=False)
    async with _client(app, "127.0.0.1") as client:
        assert (await client.get("/metrics")).status_code == 404


def test_a_short_token_is_refused_and_an_empty_one_is_none() -> None:
    with pytest.raises(ValueError, match="CUSTOS_METRICS_TOKEN"):
        Settings(metrics_token=SecretStr("short"))
    assert Settings.model_validate({"metrics_token": "  "}).metrics_token is None


async def test_operation_labels_are_names_the_schema_has(
    gql: GQL, local: httpx.AsyncClient
) -> None:
    before = await scrape(local)
    # a client's operationName is free text: never a label
    await gql.client.post(
        "/graphql",
        json={
            "query": "query JaneDoeExampleCom { __typename }",
            "operationName": "JaneDoeExampleCom",
        },
    )
    # an unknown field is not a label either
    await gql.raw("{ janeDoeAtExampleCom }")
    # root fields through fragments, sorted, joined
    await gql.raw("query { ...Q currentPolicy { version } } fragment Q on Query { __typename }")
    after = await scrape(local)
    requests = "custos_requests_total"
    assert delta(before, after, requests, operation="__typename", outcome="ok") == 1
    assert delta(before, after, requests, operation="anonymous", outcome="refused") == 1
    assert delta(before, after, requests, operation="__typename,currentPolicy") == 1
    assert "JaneDoe" not in after
    assert "janeDoe" not in after


async def test_past_the_cap_new_operation_names_are_other(
    gql: GQL, local: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(request_log, "MAX_OPERATION_LABELS", 0)
    monkeypatch.setattr(request_log, "_labels", set())
    request_log._operation_label.cache_clear()
    try:
        before = await scrape(local)
        await gql.raw("{ currentPolicy { version } __typename }")
        after = await scrape(local)
    finally:
        request_log._operation_label.cache_clear()
    assert delta(before, after, "custos_requests_total", operation="other") == 1


def test_outcomes() -> None:
    assert request_log.outcome_of(200, "denied") == "denied"
    assert request_log.outcome_of(200, None) == "ok"
    assert request_log.outcome_of(429, "error") == "rate_limited"
    assert request_log.outcome_of(503, None) == "unavailable"
    assert request_log.outcome_of(500, None) == "error"
    assert request_log.outcome_of(413, None) == "refused"
    assert request_log.outcome_of(401, None) == "denied"
    assert request_log.outcome_of(400, None) == "refused"


def test_two_processes_sharing_a_directory_are_summed_in_one_scrape(
    settings: Settings, tmp_path: Path
) -> None:
    directory = tmp_path / "prometheus"
    shared = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with servers(settings.database_url, 2, tmp_path, **shared) as started, httpx.Client() as http:
        # when the first process answers three requests and the second two
        for server, times in zip(started, (3, 2), strict=True):
            for _ in range(times):
                answer = http.post(f"{server.url}/graphql", json={"query": "{ __typename }"})
                assert answer.json() == {"data": {"__typename": "Query"}}
        texts = [http.get(f"{server.url}/metrics").text for server in started]
    # then a scrape of either process counts all five
    assert os.listdir(directory)
    for text in texts:
        labels = {"route": "/graphql", "operation": "__typename", "outcome": "ok"}
        assert value(text, "custos_requests_total", **labels) == 5
        assert value(text, "custos_request_duration_seconds_count", operation="__typename") == 5
        # and shows the policy version each live process enforces, labelled by its pid
        loaded = series(text, "custos_policy_version_loaded")
        assert len({labels["pid"] for labels in loaded}) == 2, loaded
        assert value(text, "custos_build_info", version=VERSION) == 1


async def test_open_recipient_notices_are_counted_by_status(
    services: Services, local: httpx.AsyncClient
) -> None:
    now = services.clock.now()
    common: dict[str, Any] = {
        "customer_id": uuid4(),
        "trigger": "erasure",
        "recipient": "r",
        "channel": "mail",
        "created_at": now,
    }
    for status, escalated in (
        ("pending", None),
        ("notified", None),
        ("notified", now),
        ("failed", now),
        ("acknowledged", None),
        ("not_required", now),
    ):
        await RecipientNotice.create(**common, status=status, escalated_at=escalated)
    text = await scrape(local)
    assert value(text, "custos_recipient_notices_open", status="pending") == 1
    assert value(text, "custos_recipient_notices_open", status="notified") == 2
    assert value(text, "custos_recipient_notices_open", status="failed") == 1
    assert value(text, "custos_recipient_notices_open") == 4
    assert value(text, "custos_recipient_notices_escalated") == 2
