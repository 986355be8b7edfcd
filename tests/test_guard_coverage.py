"""Every personal-data field in the schema is guarded (docs/ARCHITECTURE.md: authorization).

The test walks every path from Query and Mutation. A field counts as personal data when its
name is one we know to carry it, or when it belongs to a type about a customer and is not
listed below as that record's metadata (so a new field on Customer must be classified). Such a
field must carry a PersonalData guard itself, or sit below a field that does (or below an
operation declared with an `Allowed(category, ...)` permission). A new field that carries
personal data without a guard fails here."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLUnionType
from strawberry.permission import PermissionExtension

from api.guards import guard_of
from api.permissions import Allowed
from api.schema import build_schema
from api.settings import Settings

PERSONAL_NAMES = {
    "email",
    "pendingEmail",
    "phone",
    "address",
    "line1",
    "line2",
    "postalCode",
    "city",
    "consents",
    "consentHistory",
    "supportCases",
    "subject",
    "message",
    "visits",
    "ip",
    "userAgent",
    "browser",
    "page",
    "referrer",
    "details",
    "changes",
    "before",
    "after",
}
PERSONAL_TYPES = {"Customer", "Address", "Consent", "SupportCase", "Visit", "RightsRequest"}
# Fields of those types that are record metadata, not personal data values.
METADATA = {
    ("Customer", "id"),
    ("Customer", "emailVerified"),
    ("Customer", "createdAt"),
    ("Customer", "accessLog"),  # who read the data: shown only to the customer themself
    ("Customer", "pendingPolicy"),  # a policy version to accept: only the customer themself
    ("Customer", "disclosures"),  # to whom their data went: only the customer themself
    ("SupportCase", "id"),
    ("SupportCase", "customerId"),
    ("SupportCase", "status"),
    ("SupportCase", "assigneeId"),
    ("SupportCase", "createdAt"),
    ("SupportCase", "closedAt"),
    # A rights request's own record (what was asked, when, and what was done); what the
    # customer wrote (details, changes, before, after) is guarded.
    ("Customer", "rightsRequests"),  # the account holder's own, each field guarded inside
    *(
        ("RightsRequest", name)
        for name in (
            "id",
            "customerId",
            "kind",
            "status",
            "channel",
            "submittedAt",
            "receivedAt",
            "dueAt",
            # the law whose deadline the request follows and its clock's events: a law's
            # name and dates, what the officer needs to answer in time, not the address
            "jurisdiction",
            "clock",
            "overdue",
            "extended",
            "extensionReason",
            "decisionReason",
            "completedAt",
            "outcome",
            "transitions",
            "export",  # when the answer's link was mailed, expires, was used: no content
            # who received the data the request concerns and what each answered: names,
            # categories and dates, as the ledger's disclosures are, no value of the data
            "recipients",
        )
    ),
}
# Fields that match a name above but are not a customer's personal data, and why.
NOT_CUSTOMER_DATA = {
    ("Employee", "email"): "an employee's work address, shown to that employee and admins",
    ("InputError", "message"): "an error message",
    ("FieldError", "message"): "an error message",
    ("InvalidCredentials", "message"): "an error message",
    ("TokenError", "message"): "an error message",
    ("RegistrationAccepted", "message"): "a fixed text",
    ("RightsError", "message"): "an error message",
    ("Campaign", "subject"): "a marketing email's subject line, written by marketing",
    ("RightsRequestByEmailAccepted", "message"): "a fixed text",
    ("AccessDecision", "subjectId"): "an id, never a value",
}


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _guarded(field: Any) -> bool:
    definition = field.extensions.get("strawberry-definition")
    if definition is None:
        return False
    if guard_of(definition) is not None:
        return True
    return any(
        isinstance(extension, PermissionExtension)
        and any(isinstance(p, Allowed) for p in extension.permissions)
        for extension in definition.extensions
    )


def unguarded_paths() -> list[str]:
    schema = build_schema(Settings())._schema
    problems: list[str] = []
    seen: set[tuple[str, bool]] = set()

    def walk(type_: Any, guarded: bool, path: str) -> None:
        if isinstance(type_, GraphQLUnionType):
            for member in type_.types:
                walk(member, guarded, path)
            return
        if not isinstance(type_, GraphQLObjectType) or (type_.name, guarded) in seen:
            return
        seen.add((type_.name, guarded))
        for name, field in type_.fields.items():
            covered = guarded or _guarded(field)
            target = _named(field.type)
            personal = name in PERSONAL_NAMES or (
                type_.name in PERSONAL_TYPES and (type_.name, name) not in METADATA
            )
            if personal and not covered and (type_.name, name) not in NOT_CUSTOMER_DATA:
                problems.append(f"{path}.{name} ({type_.name}.{name})")
            walk(target, covered, f"{path}.{name}")

    for root in (schema.query_type, schema.mutation_type):
        assert root is not None
        walk(root, False, root.name)
    return problems


def test_every_personal_data_field_is_guarded() -> None:
    assert unguarded_paths() == []


def test_the_walk_notices_an_unguarded_field() -> None:
    """The check can fail: strip the guard from Customer.phone and it is reported."""
    from api.customers.types import Customer

    field = next(f for f in Customer.__strawberry_definition__.fields if f.python_name == "phone")
    kept = list(field.extensions)
    field.extensions[:] = [e for e in kept if guard_of_extension(e) is None]
    try:
        problems = unguarded_paths()
    finally:
        field.extensions[:] = kept
    assert any(p.endswith("(Customer.phone)") for p in problems), problems


def guard_of_extension(extension: Any) -> Any:
    from api.guards import PersonalData

    return extension if isinstance(extension, PersonalData) else None
