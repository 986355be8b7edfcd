"""The words of recipient notices: their triggers, statuses and the answers a recipient
gives, shared by the service, the HTTP callback and the schema."""

from __future__ import annotations

from enum import StrEnum


class Trigger(StrEnum):
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    CONSENT_WITHDRAWN = "consent_withdrawn"


class NoticeStatus(StrEnum):
    PENDING = "pending"
    """Queued, not yet delivered."""
    NOTIFIED = "notified"
    """Delivered; the recipient has not acknowledged yet."""
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    """Delivery gave up (its retry budget is spent): an officer requeues it or records why."""
    NOT_REQUIRED = "not_required"


class Outcome(StrEnum):
    """What an acknowledging recipient says it did."""

    DONE = "done"
    NO_RECORD = "no_record"


class Channel(StrEnum):
    WEBHOOK = "webhook"
    MAIL = "mail"
    NONE = "none"


SETTLED = frozenset({NoticeStatus.ACKNOWLEDGED, NoticeStatus.NOT_REQUIRED})
"""A request waits for no more from a recipient in these."""
ANSWERABLE = frozenset({NoticeStatus.PENDING, NoticeStatus.NOTIFIED, NoticeStatus.FAILED})
"""A recipient may acknowledge a notice in these (a delivery whose success we missed
still reached it)."""
FORMAT = "custos.notice/1"
ACK_FORMAT = "custos.notice-ack/1"
