"""The gauges read from the database when `/metrics` is scraped: a few cheap aggregate
queries, so that whichever process answers, the values are the database's, not a process's
memory of it.

- The outbox: messages pending (queued or being sent), failed (pending again after a failed
  attempt), dead, and how long the message due longest ago has waited past its time.
- Rights requests: open (received, not yet answered) and overdue (open past their due date).
- Recipient notices still open, by status (pending, notified, failed), and how many of
  them were escalated to the privacy officers.
- The decision log: its rows, and the last retention run (the run's summary rows are in
  it). The log is append-only and its ids grow in commit order (appends hold the chain's
  lock to the end of their transaction, authz/audit.py), so each scrape counts only the
  rows added since the last one (a first scrape counts them all, once per process).
- The latest access policy version in the database, to compare with each process's
  `custos_policy_version_loaded`.
- `custos_build_info`, the running version.

A database that does not answer within `TIMEOUT_SECONDS` leaves these gauges out of the
scrape and sets `custos_metrics_database_ok` to 0 (the per-process metrics are still
served)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from tortoise.functions import Count

from api.clock import Clock
from api.rights.rules import RUNNING
from api.version import VERSION
from authz import log_tree
from authz.adapter import current_version
from models import AuditCheckpoint, AuditEvent, OutboxMessage, RecipientNotice, RightsRequest

log = logging.getLogger("custos.metrics")

TIMEOUT_SECONDS = 5.0
QUEUED = ("pending", "sending")
"""Outbox statuses of a message not yet delivered (api/mail/sender.py)."""
NOTICES_OPEN = ("pending", "notified", "failed")
"""Statuses of a recipient notice still awaited (api/recipients/vocabulary.py)."""


@dataclass
class Figures:
    outbox_pending: int
    outbox_failed: int
    outbox_dead: int
    outbox_oldest_due_seconds: float
    rights_open: int
    rights_overdue: int
    audit_rows: int
    audit_tree_size: int
    audit_checkpoint_size: int
    audit_checkpoint_at: datetime | None
    retention_last_run: datetime | None
    policy_version_latest: int
    notices_open: dict[str, int]
    notices_escalated: int


class DatabaseGauges:
    """One per app: it remembers how far it has counted the decision log."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._counted_upto = 0
        self._audit_rows = 0
        self._retention_at: datetime | None = None

    async def figures(self) -> Figures:
        now = self.clock.now()
        counts = dict(
            await OutboxMessage.filter(status__in=[*QUEUED, "dead"])
            .group_by("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        failed = await OutboxMessage.filter(status="pending", attempts__gt=0).count()
        oldest = (
            await OutboxMessage.filter(status__in=QUEUED, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .first()
            .values_list("next_attempt_at", flat=True)
        )
        running = RightsRequest.filter(status__in=list(RUNNING))
        rights_open = await running.count()
        overdue = await RightsRequest.filter(status__in=list(RUNNING), due_at__lt=now).count()
        notices = dict(
            await RecipientNotice.filter(status__in=NOTICES_OPEN)
            .group_by("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        escalated = await RecipientNotice.filter(
            status__in=NOTICES_OPEN, escalated_at__not_isnull=True
        ).count()
        await self._count_audit()
        latest = await AuditCheckpoint.all().order_by("-id").first().values("size", "signed_at")
        return Figures(
            outbox_pending=sum(int(counts.get(s, 0)) for s in QUEUED),
            outbox_failed=failed,
            outbox_dead=int(counts.get("dead", 0)),
            outbox_oldest_due_seconds=max(0.0, (now - oldest).total_seconds())
            if isinstance(oldest, datetime)
            else 0.0,
            rights_open=rights_open,
            rights_overdue=overdue,
            audit_rows=self._audit_rows,
            audit_tree_size=await log_tree.size(),
            audit_checkpoint_size=int(str(latest["size"])) if latest else 0,
            audit_checkpoint_at=latest["signed_at"] if latest else None,
            retention_last_run=self._retention_at,
            policy_version_latest=await current_version(),
            notices_open={s: int(notices.get(s, 0)) for s in NOTICES_OPEN},
            notices_escalated=escalated,
        )

    async def _count_audit(self) -> None:
        top = await AuditEvent.all().order_by("-id").first().values_list("id", flat=True)
        top_id = int(str(top)) if top is not None else 0
        if top_id < self._counted_upto:  # the log was replaced (a restore): count again
            self._counted_upto, self._audit_rows, self._retention_at = 0, 0, None
        if top_id == self._counted_upto:
            return
        window = AuditEvent.filter(id__gt=self._counted_upto, id__lte=top_id)
        added = await window.count()
        ran = (
            await AuditEvent.filter(
                id__gt=self._counted_upto, id__lte=top_id, event="retention", operation="purge"
            )
            .order_by("-id")
            .first()
            .values_list("at", flat=True)
        )
        self._audit_rows += added
        if isinstance(ran, datetime):
            self._retention_at = ran
        self._counted_upto = top_id

    async def families(self) -> list[Metric]:
        """Every gauge of this module, the database's read now (or left out if it fails)."""
        families: list[Metric] = [build_info()]
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                figures = await self.figures()
        except Exception as exc:  # the scrape still answers with what it has
            log.warning("metrics: database gauges unavailable: %s", type(exc).__name__)
            families.append(_gauge("custos_metrics_database_ok", _DB_OK, 0))
            return families
        families.append(_gauge("custos_metrics_database_ok", _DB_OK, 1))
        families.extend(database_families(figures))
        return families


_DB_OK = "1 when the database-derived gauges of this scrape could be read, else 0."


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def build_info() -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "custos_build_info", "The running Custos version, as a label (value 1).", labels=["version"]
    )
    family.add_metric([VERSION], 1)
    return family


def database_families(f: Figures) -> Iterable[Metric]:
    retention = f.retention_last_run.timestamp() if f.retention_last_run else 0.0
    yield _gauge(
        "custos_outbox_pending_messages",
        "Outbox messages not yet delivered (pending or being sent).",
        f.outbox_pending,
    )
    yield _gauge(
        "custos_outbox_failed_messages",
        "Pending outbox messages whose last delivery attempt failed (waiting to retry).",
        f.outbox_failed,
    )
    yield _gauge(
        "custos_outbox_dead_messages",
        "Outbox messages whose retry budget is spent, kept for an operator to requeue or purge.",
        f.outbox_dead,
    )
    yield _gauge(
        "custos_outbox_oldest_pending_age_seconds",
        "How long the undelivered message due longest ago has waited past its time (0: none "
        "is waiting); a working sender keeps it near the mail poll interval.",
        f.outbox_oldest_due_seconds,
    )
    yield _gauge(
        "custos_rights_requests_open",
        "Rights requests received (identity verified) and not yet answered.",
        f.rights_open,
    )
    yield _gauge(
        "custos_rights_requests_overdue",
        "Open rights requests past their due date.",
        f.rights_overdue,
    )
    yield _gauge("custos_audit_rows", "Rows in the decision log (audit_event).", f.audit_rows)
    yield _gauge(
        "custos_audit_tree_size",
        "Rows of the decision log in its Merkle tree (custos_audit_rows minus this: rows not "
        "integrated yet, normally a second's worth).",
        f.audit_tree_size,
    )
    yield _gauge(
        "custos_audit_checkpoint_size",
        "Rows the latest signed checkpoint covers (0: none signed yet).",
        f.audit_checkpoint_size,
    )
    signed = f.audit_checkpoint_at.timestamp() if f.audit_checkpoint_at else 0.0
    yield _gauge(
        "custos_audit_checkpoint_timestamp_seconds",
        "Unix time of the latest signed checkpoint (0: none); alert when it stops moving "
        "while the log grows.",
        signed,
    )
    yield _gauge(
        "custos_retention_last_run_timestamp_seconds",
        "Unix time of the last retention run that purged (its summary rows in the decision "
        "log); 0 if none.",
        retention,
    )
    yield _gauge(
        "custos_policy_version_latest",
        "The latest access policy version in the database (compare with each process's "
        "custos_policy_version_loaded).",
        f.policy_version_latest,
    )
    notices = GaugeMetricFamily(
        "custos_recipient_notices_open",
        "Notices to recipients of customers' data not yet acknowledged nor excused, by "
        "status: pending (not yet delivered), notified (awaiting the answer), failed "
        "(delivery gave up).",
        labels=["status"],
    )
    for status, n in f.notices_open.items():
        notices.add_metric([status], n)
    yield notices
    yield _gauge(
        "custos_recipient_notices_escalated",
        "Open recipient notices escalated to the privacy officers (unanswered after every "
        "reminder, failed, or close to their request's due date).",
        f.notices_escalated,
    )
