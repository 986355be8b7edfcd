"""Rectification: the customer proposes corrections to their phone number or address; once
an officer approved them they are applied, and the values before and after are kept in the
request record (never in the audit log). The email address is changed with `updateProfile`,
which confirms the new address first."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.customers import validation as v
from api.errors import InputInvalid
from api.rights.rules import RightsProblem
from authz.registry import Category
from models import Customer

_ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "country")


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """The proposed changes, normalised: `phone` (E.164) and/or `address` (all its lines)."""
    unknown = set(changes) - {"phone", "address"}
    if unknown or not changes:
        raise RightsProblem(
            "VALIDATION", "Propose a new `phone` and/or `address`.", field="changes"
        )
    p = v.Problems()
    clean: dict[str, Any] = {}
    address = changes.get("address")
    if address is not None:
        data = v.address(
            line1=str(address.get("line1") or ""),
            line2=address.get("line2"),
            city=str(address.get("city") or ""),
            postal_code=address.get("postal_code"),
            country=str(address.get("country") or ""),
            problems=p,
        )
        clean["address"] = asdict(data)
    if changes.get("phone") is not None:
        country = clean["address"]["country"] if "address" in clean else None
        clean["phone"] = v.phone(str(changes["phone"]), country, p)
    try:
        p.raise_if_any()
    except InputInvalid as exc:
        first = exc.problems[0]
        field = f"changes.{first.field}"
        raise RightsProblem("VALIDATION", f"{first.field}: {first.message}", field=field) from None
    return clean


def _address_of(customer: Customer) -> dict[str, str]:
    return {name: getattr(customer, f"address_{name}") for name in _ADDRESS_FIELDS}


async def apply(
    *,
    customer_id: UUID,
    changes: dict[str, Any],
    allowed: Any,
    conn: BaseDBAsyncClient,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply approved changes; returns (before, after). `allowed(category)` is the
    officer's write decision; a refusal changes nothing."""
    customer = await Customer.get(id=customer_id, using_db=conn)
    before: dict[str, Any] = {}
    if "phone" in changes:
        if not allowed(Category.CONTACT_PHONE):
            raise RightsProblem("FORBIDDEN", "Not allowed to write contact.phone.")
        before["phone"] = customer.phone
        customer.phone = changes["phone"]
    if "address" in changes:
        if not allowed(Category.CONTACT_ADDRESS):
            raise RightsProblem("FORBIDDEN", "Not allowed to write contact.address.")
        before["address"] = _address_of(customer)
        for name in _ADDRESS_FIELDS:
            setattr(customer, f"address_{name}", changes["address"][name])
    await customer.save(using_db=conn)
    return before, dict(changes)
