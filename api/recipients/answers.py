"""A recipient's answer, and an officer's word for one that cannot answer. A rights request
whose work is done waits in `notifying` until every notice of it is settled (acknowledged,
or not required and why); the last one settled completes it, recorded as a transition."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.recipients.vocabulary import ANSWERABLE, SETTLED, NoticeStatus, Outcome
from models import RecipientNotice, RightsRequest, RightsTransition

NOTIFYING, COMPLETED = "notifying", "completed"
MAX_NOTE = 500


class AnswerRefused(Exception):
    """`code`: UNKNOWN_NOTICE, NOT_NOTIFIED (another recipient's notice), ALREADY_SETTLED,
    BAD_OUTCOME, VALIDATION; `status`: the HTTP status it answers with."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def _fair(text: str) -> bool:
    """Short plain text: at most MAX_NOTE characters, valid UTF-8, no control characters."""
    if len(text) > MAX_NOTE or not text.isprintable():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


async def _locked(notice_id: UUID, conn: BaseDBAsyncClient) -> RecipientNotice:
    notice = await RecipientNotice.filter(id=notice_id).using_db(conn).select_for_update().first()
    if notice is None:
        raise AnswerRefused("UNKNOWN_NOTICE", 404)
    return notice


async def acknowledge(
    *,
    notice_id: UUID,
    processor_id: UUID | None,
    outcome: str,
    note: str,
    now: datetime,
) -> RecipientNotice:
    """The recipient says it acted (`done`) or holds nothing (`no_record`). With
    `processor_id` (a signed callback) the notice must be that processor's; a link's
    holder is the contact it was mailed to. Refused with nothing changed otherwise."""
    if outcome not in tuple(Outcome):
        raise AnswerRefused("BAD_OUTCOME", 400)
    if not _fair(note):
        raise AnswerRefused("VALIDATION", 400)
    async with in_transaction() as conn:
        notice = await _locked(notice_id, conn)
        if processor_id is not None and notice.processor_id != processor_id:
            raise AnswerRefused("NOT_NOTIFIED", 403)
        if notice.status not in ANSWERABLE:
            raise AnswerRefused("ALREADY_SETTLED", 409)
        notice.status = NoticeStatus.ACKNOWLEDGED
        notice.outcome = outcome
        notice.reason = note.strip()
        notice.acknowledged_at = now
        await notice.save(using_db=conn)
        await settle(notice.request_id, now=now, conn=conn, actor=("recipient", notice.recipient))
    return notice


async def excuse(
    *, notice_id: UUID, officer_id: UUID, reason: str, now: datetime
) -> RecipientNotice:
    """The privacy officer records why a recipient could not be told, or cannot answer
    (gone out of business, refuses to reply): the notice is settled as not required."""
    if not reason.strip() or not _fair(reason):
        raise AnswerRefused("VALIDATION", 400)
    async with in_transaction() as conn:
        notice = await _locked(notice_id, conn)
        if notice.status in SETTLED:
            raise AnswerRefused("ALREADY_SETTLED", 409)
        notice.status = NoticeStatus.NOT_REQUIRED
        notice.reason = reason.strip()
        notice.decided_by = officer_id
        await notice.save(using_db=conn)
        await settle(notice.request_id, now=now, conn=conn, actor=("employee", str(officer_id)))
    return notice


async def settle(
    request_id: UUID | None, *, now: datetime, conn: BaseDBAsyncClient, actor: tuple[str, str]
) -> bool:
    """Complete the request when none of its notices is still open; True when it did."""
    if request_id is None:
        return False
    waiting = (
        await RecipientNotice.filter(request_id=request_id)
        .exclude(status__in=list(SETTLED))
        .using_db(conn)
        .exists()
    )
    if waiting:
        return False
    moved = (
        await RightsRequest.filter(id=request_id, status=NOTIFYING)
        .using_db(conn)
        .update(status=COMPLETED)
    )
    if moved:
        await RightsTransition.create(
            request_id=request_id,
            from_status=NOTIFYING,
            to_status=COMPLETED,
            actor_kind=actor[0],
            actor_id=actor[1][:64],
            reason="every recipient acknowledged, or an officer recorded why not",
            at=now,
            using_db=conn,
        )
    return bool(moved)
