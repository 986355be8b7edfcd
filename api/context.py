"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as _Info

from api.customers.service import RequestMeta
from api.errors import Unauthenticated
from api.security.sessions import COOKIE_NAME, IssuedSession, Viewer
from api.services import Services
from authz.adapter import employee_subject
from authz.audit import AuditRecord, AuditTrail
from authz.enforcer import CUSTOMER_SUBJECT, Decision


@dataclass
class Context:
    request: Request
    response: Response
    services: Services
    viewer: Viewer
    request_id: str
    audit: AuditTrail
    _decisions: dict[tuple[str, str, str, str, tuple[str, ...]], Decision] = field(
        default_factory=dict
    )

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

    def decide(
        self,
        *,
        category: str,
        action: str,
        purpose: str,
        subject_id: object = "",
        conditions: tuple[str, ...] = (),
    ) -> Decision:
        """Ask the enforcer once per (category, action, purpose, subject) in this request,
        and log the decision, allowed or denied, with the rule that matched."""
        key = (category, action, purpose, str(subject_id), conditions)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        viewer = self.viewer
        if viewer.is_employee:
            subject = employee_subject(str(viewer.subject_id))
        elif viewer.is_customer:
            subject = CUSTOMER_SUBJECT
        else:
            subject = ""
        decision = self.services.authorizer.decide(
            subject=subject,
            category=category,
            action=action,
            purpose=purpose,
            conditions=conditions,
        )
        self._decisions[key] = decision
        self.audit.add(
            AuditRecord(
                at=self.services.clock.now(),
                request_id=self.request_id,
                actor_kind=viewer.kind,
                actor_id=str(viewer.subject_id or ""),
                roles=",".join(sorted(viewer.roles)),
                event="access",
                category=category,
                action=action,
                subject_id=str(subject_id),
                purpose=purpose,
                decision="allow" if decision.allowed else "deny",
                rule=decision.rule,
                reason=decision.reason,
            )
        )
        return decision

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
