"""The retention purge (policy section 6): remove what a rule says has been kept long
enough, in short batches, keeping what a legal hold keeps.

Each target of the catalogue (api/retention/rules.py) with a rule becomes one or more
plans: a table, the rows past the cutoff, the hold categories that keep a customer's rows,
and what to do (delete, or blank columns). A plan runs in batches, each its own short
transaction: read the active holds, select the next `batch` keys of expired rows not held
(keyset order, so no row is looked at twice), delete or update exactly those ids. Readers
are never blocked for longer than one batch. The dry run counts instead and writes nothing.
A real run appends one summary row per target to the decision log (counts, never data).
On PostgreSQL a session advisory lock keeps two processes from purging at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q, Subquery
from tortoise.models import Model
from tortoise.transactions import in_transaction

from api.retention.rules import BY_KEY, Target, cutoff
from api.rights.erasure import NO_PASSWORD
from api.rights.rules import CLOSED, Kind, Status
from api.services import Services
from authz.audit import AuditRecord, append
from authz.registry import Category
from models import (
    ConsentRecord,
    Customer,
    DataExport,
    LegalHold,
    PolicyAcceptance,
    RetentionRule,
    RightsRequest,
    RightsTransition,
    VisitEvent,
)

log = logging.getLogger("custos.retention")

RUN_LOCK = 0x72657461696E  # "retain": the advisory lock of a purge run on PostgreSQL
LISTED_MAX = 100
"""Dormant accounts named by a dry run, at most (their ids, never contact data)."""
VISIT_HOLDS = frozenset({Category.BEHAVIOR_BROWSING, Category.DEVICE_BROWSER, Category.DEVICE_IP})
"""A visit row carries all three: a hold on any of them keeps the row."""


@dataclass(frozen=True, slots=True)
class TargetSummary:
    """What one target did (or, in a dry run, would do)."""

    category: str
    anchor: str
    period: str
    cutoff: datetime
    purged: int
    """Rows deleted or blanked (a dry run: that would be; a report: accounts found)."""
    held: int
    """Expired rows kept by a legal hold."""
    batches: int = 0
    """Transactions the purge ran (none in a dry run)."""
    seconds: float = 0.0
    dry_run: bool = False
    report_only: bool = False
    listed: tuple[str, ...] = ()
    """A dry run of a report-only target: the ids it found (at most LISTED_MAX)."""

    @property
    def outcome(self) -> str:
        if self.report_only:
            return f"would close {self.purged} dormant accounts, held {self.held}"
        verb = "would purge" if self.dry_run else "purged"
        return f"{verb} {self.purged}, held {self.held}"

    @property
    def line(self) -> str:
        return f"{self.category} after {self.anchor} ({self.period}): {self.outcome}"

    @property
    def audit_reason(self) -> str:
        return f"{self.outcome} (after {self.anchor}, {self.period})"[:200]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One table of a target: its expired rows, the holds that keep them, the change."""

    model: type[Model]
    expired: Q
    holds: frozenset[str]
    change: dict[str, Any] | None = None
    """None deletes the rows; otherwise the columns to set."""
    keys: tuple[str, ...] = ("id",)
    """The keyset order of the batches; the last key is the primary key."""
    customer: str = "customer_id"
    anonymous: bool = False
    """Rows without a customer exist; no hold ever keeps them."""
    report_only: bool = False


def _visits(cut: datetime) -> list[_Plan]:
    expired = Q(at__lt=cut)
    return [_Plan(VisitEvent, expired, VISIT_HOLDS, keys=("at", "id"), anonymous=True)]


def _full_ips(cut: datetime) -> list[_Plan]:
    expired = Q(at__lt=cut, ip_full__not_isnull=True)
    holds = frozenset({Category.DEVICE_IP})
    change: dict[str, Any] = {"ip_full": None}
    return [_Plan(VisitEvent, expired, holds, change, keys=("at", "id"), anonymous=True)]


def _closed_before(cut: datetime) -> Q:
    """Erased accounts closed before `cut`: their completed erasure request closed then;
    when that request is gone (rights.requests has its own period), the customer row's
    `updated_at`, which the erasure wrote at the same moment."""
    # an erasure awaiting recipients' acknowledgements closed our side when it was fulfilled
    erasures = RightsRequest.filter(
        kind=Kind.ERASURE, status__in=[Status.COMPLETED, Status.NOTIFYING]
    )
    closed_then = Subquery(erasures.filter(completed_at__lt=cut).values("customer_id"))
    every = Subquery(erasures.values("customer_id"))
    fallback = Q(updated_at__lt=cut) & ~Q(id__in=every)
    return Q(password_hash=NO_PASSWORD) & (Q(id__in=closed_then) | fallback)


def _consent_proof(cut: datetime) -> list[_Plan]:
    """The consent records and policy acceptances erasure kept as proof."""
    holds = frozenset({Category.CONSENT_HISTORY})
    closed = Customer.filter(_closed_before(cut)).values("id")
    expired = Q(customer_id__in=Subquery(closed))
    return [_Plan(model, expired, holds) for model in (ConsentRecord, PolicyAcceptance)]


def _closed_requests(cut: datetime) -> list[_Plan]:
    """Closed requests whose closing time is before `cut`: `completed_at` (set on
    completion and on refusal), else the transition into the closed status (a cancelled
    request has no `completed_at`). Transitions and exports go with them (FK cascade)."""
    into_closed = RightsTransition.filter(to_status__in=list(CLOSED), at__lt=cut)
    by_transition = Q(completed_at__isnull=True, id__in=Subquery(into_closed.values("request_id")))
    expired = Q(status__in=list(CLOSED)) & (Q(completed_at__lt=cut) | by_transition)
    return [_Plan(RightsRequest, expired, frozenset({Category.RIGHTS_REQUESTS}))]


def _expired_exports(cut: datetime) -> list[_Plan]:
    expired = Q(expires_at__lt=cut, used_at__isnull=True) & ~Q(document="")
    holds = frozenset({Category.RIGHTS_REQUESTS})
    return [_Plan(DataExport, expired, holds, change={"document": ""})]


def _dormant(cut: datetime) -> list[_Plan]:
    signed_in = Q(last_login_at__lt=cut) | Q(last_login_at__isnull=True, created_at__lt=cut)
    expired = ~Q(password_hash=NO_PASSWORD) & signed_in
    holds = frozenset({Category.CONTACT_EMAIL})
    return [_Plan(Customer, expired, holds, customer="id", report_only=True)]


PLANS: dict[tuple[str, str], Callable[[datetime], list[_Plan]]] = {
    (Category.BEHAVIOR_BROWSING, "event_time"): _visits,
    (Category.DEVICE_IP, "event_time"): _full_ips,
    (Category.CONSENT_HISTORY, "account_closed"): _consent_proof,
    (Category.RIGHTS_REQUESTS, "request_completed"): _closed_requests,
    (Category.RIGHTS_REQUESTS, "link_expired"): _expired_exports,
    (Category.CONTACT_EMAIL, "last_sign_in"): _dormant,
}


async def held_customers(
    *, categories: frozenset[str], now: datetime, conn: BaseDBAsyncClient | None = None
) -> list[str]:
    """Ids of customers with an active hold on any of `categories`: one query for every
    hold (holds are few), filtered here (JSON lists query differently per database)."""
    active = Q(released_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    rows = await LegalHold.filter(active).using_db(conn).values_list("customer_id", "categories")
    return sorted({str(c) for c, held in rows if categories.intersection(held or [])})


def _field(name: str, value: Any) -> Q:
    """A condition on a field named at run time."""
    condition: dict[str, Any] = {name: value}
    return Q(**condition)


def _not_held(plan: _Plan, held: list[str]) -> Q:
    kept = ~_field(f"{plan.customer}__in", held)
    return kept | _field(f"{plan.customer}__isnull", True) if plan.anonymous else kept


def _after(keys: tuple[str, ...], last: tuple[Any, ...]) -> Q:
    """Rows after `last` in the keyset order `keys` (one key, or a time then the id)."""
    if len(keys) == 1:
        return _field(f"{keys[0]}__gt", last[0])
    first, pk = keys
    later = _field(f"{first}__gt", last[0]) | _field(f"{pk}__gt", last[1])
    return _field(f"{first}__gte", last[0]) & later


async def _count(plan: _Plan, *, held: list[str], kept: bool) -> int:
    """Expired rows that a hold keeps (`kept`), or that it does not."""
    query = plan.model.filter(plan.expired)
    if kept:
        if not held:
            return 0
        return await query.filter(_field(f"{plan.customer}__in", held)).count()
    return await (query.filter(_not_held(plan, held)) if held else query).count()


async def _batch(
    plan: _Plan, *, now: datetime, after: tuple[Any, ...] | None, size: int
) -> tuple[int, tuple[Any, ...] | None, int]:
    """One transaction: the next `size` expired rows not held, changed. Returns (rows
    changed, the last key, rows selected)."""
    async with in_transaction() as conn:
        held = await held_customers(categories=plan.holds, now=now, conn=conn)
        query = plan.model.filter(plan.expired).using_db(conn)
        if held:
            query = query.filter(_not_held(plan, held))
        if after is not None:
            query = query.filter(_after(plan.keys, after))
        ids = await query.order_by(*plan.keys).limit(size).values_list("id", flat=True)
        if not ids:
            return 0, None, 0
        # The last row's key alone (not every row's: SQLite parses each time it returns).
        last = await plan.model.filter(id=ids[-1]).using_db(conn).values_list(*plan.keys)
        chosen = plan.model.filter(plan.expired, id__in=ids).using_db(conn)
        changed = await (chosen.delete() if plan.change is None else chosen.update(**plan.change))
    # SQLite's count includes the rows a foreign key cascade deleted (a request's history):
    # no more than the rows chosen were the plan's own.
    return min(int(changed), len(ids)), tuple(last[0]), len(ids)


async def _purge(plan: _Plan, *, now: datetime, size: int) -> tuple[int, int]:
    """Every expired row not held, a batch at a time; returns (rows changed, batches)."""
    changed, batches, after = 0, 0, None
    while True:
        done, after, selected = await _batch(plan, now=now, after=after, size=size)
        changed, batches = changed + done, batches + 1
        if selected < size:
            return changed, batches


async def _listed(plan: _Plan, held: list[str]) -> tuple[str, ...]:
    query = plan.model.filter(plan.expired)
    if held:
        query = query.filter(_not_held(plan, held))
    ids = await query.order_by("id").limit(LISTED_MAX).values_list("id", flat=True)
    return tuple(str(i) for i in ids)


@dataclass(frozen=True, slots=True)
class _Tally:
    purged: int
    held: int
    batches: int = 0
    listed: tuple[str, ...] = ()


async def _run_plan(plan: _Plan, *, now: datetime, size: int, dry_run: bool) -> _Tally:
    """Count (a dry run, a report) or purge one plan; held rows are counted with the
    holds in force at the end."""
    if dry_run or plan.report_only:
        held = await held_customers(categories=plan.holds, now=now)
        listed = await _listed(plan, held) if dry_run and plan.report_only else ()
        purged = await _count(plan, held=held, kept=False)
        return _Tally(purged, await _count(plan, held=held, kept=True), listed=listed)
    purged, batches = await _purge(plan, now=now, size=size)
    held = await held_customers(categories=plan.holds, now=now)
    return _Tally(purged, await _count(plan, held=held, kept=True), batches)


async def _run_target(
    target: Target, rule: RetentionRule, *, now: datetime, size: int, dry_run: bool
) -> TargetSummary:
    cut = cutoff(now=now, months=rule.months, days=rule.days)
    started = time.perf_counter()
    plans = PLANS[target.key](cut)
    tallies = [await _run_plan(p, now=now, size=size, dry_run=dry_run) for p in plans]
    return TargetSummary(
        category=target.category,
        anchor=target.anchor,
        period=rule.period,
        cutoff=cut,
        purged=sum(t.purged for t in tallies),
        held=sum(t.held for t in tallies),
        batches=sum(t.batches for t in tallies),
        seconds=time.perf_counter() - started,
        dry_run=dry_run,
        report_only=any(p.report_only for p in plans),
        listed=tuple(i for t in tallies for i in t.listed),
    )


async def rules_in_force() -> list[tuple[Target, RetentionRule]]:
    """The rules of known targets, in the catalogue's order (a row for an unknown
    target, which set_rule never writes, is skipped and logged)."""
    found: dict[tuple[str, str], RetentionRule] = {}
    for rule in await RetentionRule.all():
        if (rule.category, rule.anchor) in BY_KEY:
            found[(rule.category, rule.anchor)] = rule
        else:
            log.warning("retention rule %s is for no known target; skipped", rule.id)
    return [(target, found[key]) for key, target in BY_KEY.items() if key in found]


@contextlib.asynccontextmanager
async def _exclusive() -> AsyncIterator[bool]:
    """On PostgreSQL, hold the run's advisory lock on a connection of its own for the
    whole run (True), or learn that another process holds it (False). SQLite serialises
    writers, and every batch re-selects what is still there."""
    client = connections.get("default")
    if client.capabilities.dialect != "postgres":
        yield True
        return
    async with client.acquire_connection() as raw:
        mine = bool(await raw.fetchval("SELECT pg_try_advisory_lock($1)", RUN_LOCK))
        try:
            yield mine
        finally:
            if mine:
                await _unlock(raw)


async def _unlock(raw: Any) -> None:
    """Give the run lock back. The pool does not reset session state (api/db_postgres.py),
    so when the unlock does not happen (the connection lost, or the run cancelled again
    while unlocking) the session is closed, and its lock with it, rather than pooled with
    the lock still held."""
    try:
        await raw.execute("SELECT pg_advisory_unlock($1)", RUN_LOCK)
    except Exception:  # the session is lost (which released the lock) or cannot unlock
        raw.terminate()
    except BaseException:  # cancelled while unlocking
        raw.terminate()
        raise


async def _audit(services: Services, summary: TargetSummary, run_id: str) -> None:
    """One summary row per target: category, counts and rule; never data."""
    record = AuditRecord(
        at=services.clock.now(),
        request_id=run_id,
        actor_kind="system",
        event="retention",
        operation="purge",
        category=summary.category,
        decision="allow",
        reason=summary.audit_reason,
    )
    await append([record])


async def run_retention(
    *, services: Services, dry_run: bool, batch: int | None = None
) -> list[TargetSummary]:
    """Run every target that has a rule. A dry run counts what would go and writes
    nothing. A real run purges in batches of `batch` (default `retention_batch`) and logs
    one summary per target; it returns [] at once when another process is purging."""
    size = batch or services.settings.retention_batch
    now = services.clock.now()
    rules = await rules_in_force()
    if dry_run:
        return [await _run_target(t, r, now=now, size=size, dry_run=True) for t, r in rules]
    async with _exclusive() as mine:
        if not mine:
            log.info("retention: another process is purging; this run did nothing")
            return []
        run_id, summaries = uuid.uuid4().hex, []
        for target, rule in rules:
            summary = await _run_target(target, rule, now=now, size=size, dry_run=False)
            await _audit(services, summary, run_id)
            summaries.append(summary)
    return summaries


async def run_retention_loop(*, services: Services, interval_seconds: float) -> None:
    """The background schedule: a run now, then every `interval_seconds`. A failed run is
    logged by its error type (never its message, which may quote a row) and retried at
    the next interval."""
    while True:
        try:
            for summary in await run_retention(services=services, dry_run=False):
                log.info("retention: %s", summary.line)
        except Exception as exc:  # keep the schedule alive; the next run resumes
            log.error("retention run failed: %s", type(exc).__name__)
        await asyncio.sleep(interval_seconds)
