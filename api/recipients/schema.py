"""Recipient notices over GraphQL: the privacy officer's view of every notice still open
(or escalated), and the officer's record of why a recipient cannot be told or answer."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.context import Info
from api.errors import parse_id
from api.permissions import only
from api.recipients import answers
from api.recipients.chase import OPEN
from api.recipients.types import RecipientNotice
from api.recipients.vocabulary import NoticeStatus
from api.rights.types import RightsError
from api.types import ErrorCode
from authz.registry import Role
from models import RecipientNotice as NoticeModel

MAX_LISTED = 200
_CODES = {"UNKNOWN_NOTICE": "NOT_FOUND"}
ExcusePayload = Annotated[
    RecipientNotice | RightsError, strawberry.union("ExcuseRecipientNoticePayload")
]


@strawberry.type
class RecipientsQuery:
    @strawberry.field(
        extensions=only(Role.PRIVACY_OFFICER),
        description="Notices to recipients, oldest first (at most 200): by default every one "
        "still open (pending, notified or failed); `escalated` keeps only those the officers "
        "were alerted about.",
    )
    async def recipient_notices(
        self,
        info: Info,
        status: NoticeStatus | None = None,
        escalated: bool | None = None,
    ) -> list[RecipientNotice] | None:
        query = NoticeModel.filter(status=status) if status else NoticeModel.filter(status__in=OPEN)
        if escalated is not None:
            query = query.filter(escalated_at__isnull=not escalated)
        rows = await query.order_by("created_at", "id").limit(MAX_LISTED)
        return [RecipientNotice.from_model(n) for n in rows]


@strawberry.type
class RecipientsMutation:
    @strawberry.mutation(
        extensions=only(Role.PRIVACY_OFFICER),
        description="Record why a recipient cannot be told or will not answer (it ceased "
        "trading, say): the notice is settled as not required, with your reason, and its "
        "request completes when no other recipient is awaited.",
    )
    async def excuse_recipient_notice(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> ExcusePayload | None:
        notice_id = parse_id(id, what="notice")
        try:
            notice = await answers.excuse(
                notice_id=notice_id,
                officer_id=info.context.subject_id,
                reason=reason,
                now=info.context.services.clock.now(),
            )
        except answers.AnswerRefused as exc:
            code = _CODES.get(exc.code, exc.code)
            info.context.audit_event(
                event="recipients", operation="excuse", decision="deny", reason=code
            )
            return RightsError(code=ErrorCode(code), message=_MESSAGES[code])
        info.context.audit_event(
            event="recipients",
            operation="excuse",
            subject_id=notice.customer_id,
            reason=str(notice.id),
        )
        return RecipientNotice.from_model(notice)


_MESSAGES = {
    "NOT_FOUND": "No such notice.",
    "ALREADY_SETTLED": "This notice is already acknowledged or excused.",
    "VALIDATION": f"Give a reason of 1 to {answers.MAX_NOTE} characters.",
}
