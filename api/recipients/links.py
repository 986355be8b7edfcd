"""The single-use acknowledgement link of a notice mailed to a recipient's contact:
`/notices/<notice id>.<tag>` (api/security/tokens.py, `tagged_id`). Nothing is stored: the
notice's own state makes the link single-use, since a settled notice takes no second
acknowledgement."""

from __future__ import annotations

from uuid import UUID

from api.security.tokens import id_of_tagged, tagged_id

_PURPOSE = "custos.notice-ack.v1"


def ack_token(secret: str, notice_id: UUID) -> str:
    return tagged_id(secret, _PURPOSE, notice_id)


def notice_of(secret: str, token: str) -> UUID | None:
    """The notice a token is for, when its tag is right; else None."""
    return id_of_tagged(secret, _PURPOSE, token)
