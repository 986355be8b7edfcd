"""Who may call an operation, declared on the field (never inside a resolver body).

Role checks here are coarse; purpose-bound reads of personal data go through Casbin."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from api.context import Info
from api.errors import Unauthenticated


class _ViewerKind(BasePermission):
    kind = ""
    message = "This operation is not available to you."
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        if viewer.kind == "anonymous":
            raise Unauthenticated()
        return viewer.kind == self.kind


class IsCustomer(_ViewerKind):
    kind = "customer"


class IsEmployee(_ViewerKind):
    kind = "employee"


class IsSignedIn(BasePermission):
    message = "Sign in first."
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.viewer.kind != "anonymous"


class HasRole(BasePermission):
    message = "Your role does not allow this."
    error_extensions = {"code": "FORBIDDEN"}

    def __init__(self, role: str) -> None:
        self.role = role

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        if viewer.kind == "anonymous":
            raise Unauthenticated()
        return viewer.is_employee and self.role in viewer.roles
