"""The metrics each process keeps (docs/OBSERVABILITY.md): counters, a histogram and two
gauges, in prometheus-client's multi-process mode when `PROMETHEUS_MULTIPROC_DIR` is set
(every process writes its values to a file there; a scrape of any process sums them), in a
plain registry otherwise.

The request path only increments a counter and observes the histogram: the label values
are the bounded ones api/observability/request_log.py works out, and each series' child is
looked up once per process and kept (`labels()` takes a lock and builds a key each call)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
"""Read by prometheus-client when it is imported, as here: multi-process mode is chosen
once, before the first metric exists."""

if MULTIPROCESS_DIR:  # every metric below writes its file there as soon as it has a value
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created`, as multi-process mode

REGISTRY = CollectorRegistry(auto_describe=True)
"""Custos's own metrics (not the library's default registry, which holds the Python
process's collectors and anything a library registers)."""

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: a light read takes a few milliseconds; 30 s is the default request deadline."""

REQUESTS = Counter(
    "custos_requests",
    "HTTP requests answered, by route, GraphQL operation (its root fields; `anonymous` when "
    "unknown) and outcome (ok, denied, error, refused, rate_limited, unavailable).",
    ("route", "operation", "outcome"),
    registry=REGISTRY,
)
DURATION = Histogram(
    "custos_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route and operation.",
    ("route", "operation"),
    buckets=BUCKETS,
    registry=REGISTRY,
)
DECISIONS = Counter(
    "custos_access_decisions",
    "Access decisions made and logged (one per decision a request logs, not per field or "
    "subject), by decision (allow, deny) and the viewer's role.",
    ("decision", "role"),
    registry=REGISTRY,
)
DENIALS = Counter(
    "custos_access_denials",
    "Denied access decisions by reason: Casbin's denial code (NO_RULE, DENY_RULE, "
    "CONDITION_UNMET, PURPOSE_NOT_ALLOWED, VALUE_BLIND_ROLE) or ROLE_REQUIRED.",
    ("reason",),
    registry=REGISTRY,
)
AUDIT_VERIFIED = Gauge(
    "custos_audit_last_verify_timestamp_seconds",
    "Unix time of the last successful walk of the decision log's hash chain recorded by a "
    "process sharing these metrics (0: none recorded).",
    multiprocess_mode="max",
    registry=REGISTRY,
)
CHECKPOINT_REFUSALS = Counter(
    "custos_audit_checkpoint_refusals_total",
    "Times the log refused to sign a checkpoint because its tree no longer extends the last "
    "one signed (the tree was rewritten in the database): page someone.",
    registry=REGISTRY,
)

ROLE_REQUIRED = "ROLE_REQUIRED"
"""The denial reason of an operation refused for the viewer's role (api/permissions.py)."""

_requests: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
_decisions: dict[tuple[str, bool, str], tuple[Counter, ...]] = {}
_policy_version: list[Gauge] = []
"""`custos_policy_version_loaded`, made by the first process that loads a policy: in
multi-process mode a gauge's file appears when it is made, and a process that never serves
(the supervisor of several uvicorn workers) must not show a version 0 beside the workers."""
_loaded_version: list[int | None] = [None]


def observe_request(route: str, operation: str, outcome: str, seconds: float) -> None:
    """One request answered: the hot path's whole cost here is an increment and an
    observation (label values are bounded by their makers)."""
    key = (route, operation, outcome)
    series = _requests.get(key)
    if series is None:
        series = (REQUESTS.labels(route, operation, outcome), DURATION.labels(route, operation))
        _requests[key] = series
    series[0].inc()
    series[1].observe(seconds)


def role_label(kind: str, roles: str) -> str:
    """`anonymous`, `customer`, or an employee's roles (sorted, comma-joined): names the
    policy defines, never an id."""
    if kind == "employee":
        return roles or "employee"
    return kind


def count_decision(role: str, allowed: bool, reason: str) -> None:
    """A logged access decision; a denial counted by its reason too."""
    key = (role, allowed, reason)
    children = _decisions.get(key)
    if children is None:
        if allowed:
            children = (DECISIONS.labels("allow", role),)
        else:
            children = (DECISIONS.labels("deny", role), DENIALS.labels(reason or "UNKNOWN"))
        _decisions[key] = children
    for child in children:
        child.inc()


def note_policy_version(version: int) -> None:
    """The access policy version this process now enforces (written only on a change)."""
    if _loaded_version[0] == version:
        return
    if not _policy_version:
        _policy_version.append(
            Gauge(
                "custos_policy_version_loaded",
                "The access policy version this process enforces (one series per live "
                "process in multi-process mode, labelled pid).",
                multiprocess_mode="liveall",
                registry=REGISTRY,
            )
        )
    _policy_version[0].set(version)
    _loaded_version[0] = version


def note_checkpoint_refused() -> None:
    CHECKPOINT_REFUSALS.inc()


def note_audit_verified(ok: bool, at: float | None = None) -> None:
    """Call when a walk of the decision log's chain ends (the `verifyAuditLog` query,
    `custos audit verify`): a successful one is the time shown. Not kept in the database
    (nothing there records a verify's result), so it is this process's, or, in
    multi-process mode, the latest of the processes sharing the directory."""
    if ok:
        AUDIT_VERIFIED.set(time.time() if at is None else at)


class _Yields(Collector):
    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families()


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """The text format: this process's metrics, or in multi-process mode every process's,
    summed (counters, histograms), the highest (the verify time) or one series per live
    process (the policy version); then `extra` (families read at scrape time)."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_DIR:
        MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Yields(REGISTRY.collect))
    extra = list(extra)
    registry.register(_Yields(lambda: extra))
    return generate_latest(registry)


def process_exiting() -> None:
    """At shutdown: this process's live gauges leave the multi-process directory (its
    counters stay, so that sums do not go back)."""
    if MULTIPROCESS_DIR:
        mark_process_dead(os.getpid(), MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
