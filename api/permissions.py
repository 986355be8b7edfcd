"""Who may call an operation, declared on the field (never inside a resolver body).

Role checks here are coarse; purpose-bound reads of personal data go through Casbin.
Every FORBIDDEN carries `extensions.reason`: ROLE_REQUIRED when the operation is for
other kinds of viewer or other roles (a check in code, not a policy rule), or Casbin's
denial code (NO_RULE, DENY_RULE, ...) with the rule and policy version (Allowed)."""

from __future__ import annotations

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.exceptions import PermissionReturnedNonBooleanError
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types.field import StrawberryField

from api.context import Info
from api.denied_fields import forbidden_extensions
from api.errors import Forbidden, Unauthenticated
from authz.adapter import employee_subject

ROLE_REQUIRED = {"code": "FORBIDDEN", "reason": "ROLE_REQUIRED"}


class _ViewerKind(BasePermission):
    """A signed-in viewer of one kind; a refusal is logged (every denial is)."""

    kind = ""
    message = "This operation is not available to you."
    error_extensions = ROLE_REQUIRED
    requirement = ""  # the logged reason of a refusal

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        if viewer.kind == "anonymous":
            raise Unauthenticated()
        if viewer.kind == self.kind and self.admits(source, info):
            return True
        info.context.audit_event(
            event="access",
            operation=info.field_name,
            decision="deny",
            reason=self.requirement,
        )
        return False

    def admits(self, source: Any, info: Info) -> bool:
        """Beyond the viewer's kind: whether this viewer may (by default, any of the kind)."""
        return True


class IsCustomer(_ViewerKind):
    kind = "customer"
    requirement = "requires a customer"


class IsEmployee(_ViewerKind):
    kind = "employee"
    requirement = "requires an employee"


class IsAccountHolder(_ViewerKind):
    """Only the signed-in customer whose account this is (not staff, not other customers)."""

    kind = "customer"
    message = "Only the account holder can see this."
    requirement = "requires the account holder"

    def admits(self, source: Any, info: Info) -> bool:
        return bool(info.context.viewer.subject_id == getattr(source, "customer_id", None))


class IsSignedIn(BasePermission):
    message = "Sign in first."
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.viewer.kind != "anonymous"


class HasRole(BasePermission):
    """An employee holding any of `roles`, in the database and in the access policy this
    process enforces; a refusal is logged (every denial is).

    A role just granted is in the database at once but reaches each process's policy
    within the propagation bound: until then the operation is refused here, rather than
    admitted and then denied every category inside (an access export with nothing in it,
    a request closed for nothing). A role just revoked is refused as soon as either
    knows."""

    message = "Your role does not allow this."
    error_extensions = ROLE_REQUIRED

    def __init__(self, *roles: str) -> None:
        self.roles = frozenset(roles)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        if viewer.kind == "anonymous":
            raise Unauthenticated()
        claimed = self.roles & viewer.roles if viewer.is_employee else frozenset()
        if claimed and viewer.subject_id is not None:
            enforced = info.context.services.authorizer.held_roles(
                employee_subject(viewer.subject_id)
            )
            if not claimed.isdisjoint(enforced):
                return True
        info.context.audit_event(
            event="access",
            operation=info.field_name,
            decision="deny",
            reason=f"requires role {' or '.join(sorted(self.roles))}",
        )
        return False


def only(*roles: str) -> list[FieldExtension]:
    """The extensions of an operation for employees holding any of `roles` (HasRole)."""
    return [PermissionExtension(permissions=[HasRole(*roles)])]


class Allowed(BasePermission):
    """An operation on a data category, for a purpose, decided by Casbin and logged.
    A customer acts on their own data (`self`)."""

    message = "Your role does not allow this for this purpose."

    def __init__(self, category: str, action: str, purpose: str) -> None:
        self.category, self.action, self.purpose = category, action, purpose

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        if context.viewer.kind == "anonymous":
            raise Unauthenticated()
        own = ("self",) if context.viewer.is_customer else ()
        subject = context.viewer.subject_id if context.viewer.is_customer else ""
        decision = context.decide(
            category=self.category,
            action=self.action,
            purpose=self.purpose,
            subject_id=subject or "",
            conditions=own,
        )
        if not decision.allowed:
            extensions = forbidden_extensions(decision, context.services.authorizer.version)
            del extensions["code"]  # Forbidden's own
            raise Forbidden(self.message, **extensions)
        return True


def _plain_permitted(field: StrawberryField, info_class: type) -> Callable[..., Any] | None:
    """`field`'s resolver with its permission checks, as graphql-core's own resolver; None
    when the field is not one `install_plain_permissions` takes."""
    resolver = field.base_resolver
    if resolver is None or resolver.is_async or field.arguments or len(field.extensions) != 1:
        return None
    extension = field.extensions[0]
    if type(extension) is not PermissionExtension or extension.fail_silently:
        return None
    permissions = tuple(extension.permissions)
    if any(iscoroutinefunction(p.has_permission) for p in permissions):
        return None
    if resolver.parent_parameter or resolver.root_parameter:
        return None
    function: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]
    with_self = resolver.self_parameter is not None
    info_name = resolver.info_parameter.name if resolver.info_parameter else None

    def resolve(source: Any, info: Any) -> Any:
        strawberry_info = info_class(_raw_info=info, _field=field)
        for permission in permissions:
            allowed = permission.has_permission(source, strawberry_info)
            if allowed is not True:
                if allowed is False:
                    return permission.on_unauthorized()
                raise PermissionReturnedNonBooleanError(permission, allowed)
        args = (source,) if with_self else ()
        return function(*args, **{info_name: strawberry_info}) if info_name else function(*args)

    resolve.permissions = permissions  # type: ignore[attr-defined]
    return resolve


def install_plain_permissions(schema: GraphQLSchema, info_class: type) -> list[str]:
    """Give every field that is a synchronous resolver without arguments behind a
    permission check (`me`, say) that check and that resolver as graphql-core's own
    resolver: the same checks, in the same order, the same refusals, and the same call of
    the resolver, without strawberry's per-field path (an extension chain built and
    entered, arguments converted) that cost more than the light query's own work. The
    declaration stays the field's PermissionExtension, so the schema says who may call
    it as before. Returns the fields it set, as `Type.field`."""
    installed = []
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType):
            continue
        for name, field in type_.fields.items():
            definition = field.extensions.get("strawberry-definition")
            if definition is None or field.args:
                continue
            plain = _plain_permitted(definition, info_class)
            if plain is not None:
                field.resolve = plain
                installed.append(f"{type_.name}.{name}")
    return installed
