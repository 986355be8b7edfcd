"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as _Info

from api.customers.service import RequestMeta
from api.errors import Unauthenticated
from api.security.sessions import COOKIE_NAME, IssuedSession, Viewer
from api.services import Services
from authz.audit import AuditTrail


@dataclass
class Context:
    request: Request
    response: Response
    services: Services
    viewer: Viewer
    request_id: str
    audit: AuditTrail

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    @property
    def subject_id(self) -> UUID:
        """The signed-in customer's or employee's id (fields guard who is signed in)."""
        if self.viewer.subject_id is None:
            raise Unauthenticated()
        return self.viewer.subject_id

    @property
    def meta(self) -> RequestMeta:
        return RequestMeta(
            ip=self.client_ip, user_agent=self.request.headers.get("user-agent"), trail=self.audit
        )

    def audit_event(
        self, *, event: str, operation: str, subject_id: object = "", reason: str = ""
    ) -> None:
        """An allowed event done by the signed-in viewer."""
        viewer = self.viewer
        self.audit.event(
            at=self.services.clock.now(),
            event=event,
            operation=operation,
            decision="allow",
            actor_kind=viewer.kind,
            actor_id=viewer.subject_id or "",
            roles=",".join(sorted(viewer.roles)),
            subject_id=subject_id,
            reason=reason,
        )

    def set_session_cookie(self, issued: IssuedSession) -> None:
        self.response.set_cookie(
            COOKIE_NAME,
            issued.token,
            max_age=issued.max_age_seconds,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )

    def clear_session_cookie(self) -> None:
        self.response.delete_cookie(
            COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax"
        )


def session_token(request: Request) -> str | None:
    """`Authorization: Bearer <token>` first, then the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE_NAME)


Info = _Info[Context, None]
