"""The single-use acknowledgement link of a notice mailed to a recipient's contact:
`/notices/<notice id>.<tag>`, the tag an HMAC of the notice id under the secret key (a
previous key still verifies after a rotation). Nothing is stored: the notice's own state
makes the link single-use, since a settled notice takes no second acknowledgement."""

from __future__ import annotations

import hmac
from uuid import UUID

from api.security.secret_keys import verifying_keys
from api.security.tokens import keyed_digest

_PURPOSE = "custos.notice-ack.v1"
_TAG_CHARS = 40
MAX_TOKEN_CHARS = 36 + 1 + _TAG_CHARS


def ack_token(secret: str, notice_id: UUID) -> str:
    return f"{notice_id}.{keyed_digest(secret, _PURPOSE, str(notice_id))[:_TAG_CHARS]}"


def notice_of(secret: str, token: str) -> UUID | None:
    """The notice a token is for, when its tag is right; else None."""
    if len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    raw_id, _, tag = token.partition(".")
    try:
        notice_id = UUID(raw_id)
    except ValueError:
        return None
    if str(notice_id) != raw_id:
        return None
    for key in verifying_keys(secret):
        wanted = keyed_digest(key, _PURPOSE, raw_id)[:_TAG_CHARS]
        if hmac.compare_digest(wanted.encode(), tag.encode()):
            return notice_id
    return None
