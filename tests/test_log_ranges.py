"""The decision log verified in id ranges by worker processes (authz/log_ranges.py) finds
exactly what the walk in one process finds, wherever the ranges' edges fall: at the broken
row, just before it, just after it, or with one row per range."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from api.clock import FakeClock
from authz import log_tree, log_verify
from authz.log_ranges import plan
from models import AuditEvent
from tests.test_log_verify import grow, intrude

Attack = Callable[[list[int]], str]


def listing(row_id: int) -> str:
    """SQL: a posting list holds `row_id`."""
    return f"',' || event_ids || ',' LIKE '%,{row_id},%'"


ATTACKS: dict[str, Attack] = {
    "a row edited": lambda ids: f"UPDATE audit_event SET purpose = 'legal' WHERE id = {ids[4]}",
    "the first row edited": lambda ids: (
        f"UPDATE audit_event SET roles = 'admin' WHERE id = {ids[0]}"
    ),
    "a row not yet in the tree edited": lambda ids: (
        f"UPDATE audit_event SET decision = 'deny' WHERE id = {ids[-1]}"
    ),
    "a row deleted with its leaf and links": lambda ids: (
        f"DELETE FROM audit_posting WHERE {listing(ids[4])};"
        f"DELETE FROM audit_leaf WHERE event_id = {ids[4]};"
        f"DELETE FROM audit_event WHERE id = {ids[4]}"
    ),
    "a leaf deleted": lambda ids: f"DELETE FROM audit_leaf WHERE event_id = {ids[5]}",
    "a subject link deleted": lambda ids: (
        f"DELETE FROM audit_posting WHERE {listing(ids[3])} AND subject_id = 'c-3'"
    ),
    "a leaf hash replaced": lambda ids: (
        f"UPDATE audit_leaf SET hash = '{'cd' * 32}' WHERE event_id = {ids[6]}"
    ),
}


@pytest.fixture
def ranged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the walk in ranges ran (so a test cannot pass on the other path)."""
    calls: list[int] = []
    walk_ranges = log_verify._walk_ranges

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await walk_ranges(*args, **kwargs)

    monkeypatch.setattr(log_verify, "_walk_ranges", counted)
    return calls


async def _log(clock: FakeClock) -> list[int]:
    """Nine rows in the tree and two after it; their ids."""
    await grow(clock, 0, 9)
    assert await log_tree.integrate() == 9
    await grow(clock, 9, 2)
    return [e.id for e in await AuditEvent.all().order_by("id")]


@pytest.mark.parametrize("range_rows", [1, 2, 3, 5])
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_ranges_name_the_same_row_and_problem_as_one_walk(
    clock: FakeClock, database_url: str, ranged: list[int], attack: str, range_rows: int
) -> None:
    ids = await _log(clock)
    await intrude(ATTACKS[attack](ids))
    alone = await log_verify.verify_log()
    assert not alone.ok
    assert alone.first_broken_id is not None
    together = await log_verify.verify_log(
        workers=2, database_url=database_url, range_rows=range_rows
    )
    assert ranged == [1]
    assert together == alone


@pytest.mark.parametrize("range_rows", [1, 4, 100])
async def test_an_intact_log_verifies_alike_in_ranges(
    clock: FakeClock, database_url: str, ranged: list[int], range_rows: int
) -> None:
    await _log(clock)
    alone = await log_verify.verify_log()
    together = await log_verify.verify_log(
        workers=2, database_url=database_url, range_rows=range_rows
    )
    assert alone.ok
    assert (alone.checked, alone.tree_size) == (11, 9)
    assert together == alone
    assert ranged == ([1] if range_rows < 11 else [])  # a log under range_rows: one walk


def test_ranges_cover_every_id_once() -> None:
    for low, high, workers, rows in [(1, 11, 2, 3), (5, 5, 4, 1), (1, 1_000_000, 8, 100_000)]:
        ranges = plan(low, high, workers=workers, range_rows=rows)
        assert ranges[0][0] == low - 1
        assert ranges[-1][1] == high
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert all(after < upto for after, upto in ranges)
        assert len(ranges) >= min(workers, high - low + 1)
