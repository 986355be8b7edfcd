"""Marketing operations: glue between GraphQL and api/marketing/."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.context import Info
from api.marketing.unsubscribe import unsubscribe as unsubscribe_by_token
from api.marketing.unsubscribe_tokens import EXPIRED, InvalidUnsubscribeToken
from api.types import ErrorCode, TokenError


@strawberry.type(description="The consent the link was for is withdrawn.")
class Unsubscribed:
    purpose: str
    changed: bool = strawberry.field(description="False when it already was withdrawn.")


UnsubscribePayload = Annotated[Unsubscribed | TokenError, strawberry.union("UnsubscribePayload")]

_UNSUBSCRIBE_MESSAGES = {
    ErrorCode.INVALID_TOKEN: "This unsubscribe link is not valid.",
    ErrorCode.TOKEN_EXPIRED: "This unsubscribe link has expired; withdraw your consent in "
    "your privacy settings instead.",
}


@strawberry.type
class UnsubscribeMutation:
    @strawberry.mutation(
        description="Withdraw the consent an unsubscribe link in a marketing message is for "
        "(the token of `/unsubscribe/{token}`); no sign-in needed."
    )
    async def unsubscribe(self, info: Info, token: str) -> UnsubscribePayload:
        try:
            _, purpose, changed = await unsubscribe_by_token(
                services=info.context.services, token=token, meta=info.context.meta
            )
        except InvalidUnsubscribeToken as exc:
            code = ErrorCode.TOKEN_EXPIRED if exc.code == EXPIRED else ErrorCode.INVALID_TOKEN
            return TokenError(code=code, message=_UNSUBSCRIBE_MESSAGES[code])
        return Unsubscribed(purpose=purpose, changed=changed)
