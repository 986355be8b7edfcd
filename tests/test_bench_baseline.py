"""The guard benchmark's baseline (bench/unguarded_app.py) is what it says: the same staff
page with the guards, their facts and the decision log off. Its figures are the yardstick of
"guarded / unguarded"; a baseline that still decided fields (as it did while the plain
resolvers called a guard method it did not switch off) makes every guarded figure look
better than it is. The guarded page, asked the same way, does decide and log."""

from __future__ import annotations

from typing import Any

import pytest

from api.context import Context
from api.customers import directory
from api.services import Services
from bench.unguarded_app import switch_off
from models import AuditEvent
from tests.conftest import GQL
from tests.test_guarded_reads import PAGE, make_customer, staff_token


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"read_access": 0, "read_fields": 0, "facts_of": 0}
    read_access, read_fields, facts_of = (
        Context.read_access,
        Context.read_fields,
        directory.facts_of,
    )

    def counted_read(self: Context, *args: Any, **kwargs: Any) -> Any:
        calls["read_access"] += 1
        return read_access(self, *args, **kwargs)

    def counted_fields(self: Context, *args: Any, **kwargs: Any) -> Any:
        calls["read_fields"] += 1
        return read_fields(self, *args, **kwargs)

    def counted_facts(*args: Any, **kwargs: Any) -> Any:
        calls["facts_of"] += 1
        return facts_of(*args, **kwargs)

    monkeypatch.setattr(Context, "read_access", counted_read)
    monkeypatch.setattr(Context, "read_fields", counted_fields)
    monkeypatch.setattr(directory, "facts_of", counted_facts)
    return calls


async def _page(gql: GQL, services: Services) -> tuple[dict[str, Any], int]:
    for n in range(3):
        await make_customer(n, open_case=True)
    token, _ = await staff_token(gql, services, "customer_care")
    before = await AuditEvent.filter(event="access").count()
    body = await gql(PAGE, {"purpose": "SUPPORT", "first": 10}, token=token)
    return body, await AuditEvent.filter(event="access").count() - before


async def test_the_baseline_decides_reads_and_logs_nothing(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_reads(monkeypatch)
    switch_off(monkeypatch.setattr)
    body, logged = await _page(gql, services)
    nodes = [edge["node"] for edge in body["data"]["customers"]["edges"]]
    assert len(nodes) == 3
    assert all(node["email"] and node["phone"] for node in nodes)
    assert "errors" not in body
    assert calls == {"read_access": 0, "read_fields": 0, "facts_of": 0}
    assert logged == 0


async def test_the_guarded_page_asked_the_same_way_decides_and_logs(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_reads(monkeypatch)
    body, logged = await _page(gql, services)
    assert len(body["data"]["customers"]["edges"]) == 3
    assert "errors" not in body
    # each customer's email, phone and address decided together; the first customer's
    # three categories each asked of the policy (the others share their decisions)
    assert calls["read_fields"] == 3
    assert calls["read_access"] == 3
    assert calls["facts_of"] == 1
    assert logged >= 1
