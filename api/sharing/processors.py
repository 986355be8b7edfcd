"""The processor registry (policy section 3A): each service provider we share personal
data with, the purposes it serves and the data categories it may receive, and while its
contract is active. Legal manages it; sharing outside it is refused (api/sharing/share.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.clock import as_utc
from api.customers import validation as v
from api.customers.countries import ISO_3166_ALPHA2
from api.errors import FieldProblem, InputInvalid
from api.recipients import signing
from authz.registry import PURPOSES, Category
from models import Processor

SHAREABLE = (
    Category.CONTACT_EMAIL,
    Category.CONTACT_PHONE,
    Category.CONTACT_ADDRESS,
    Category.DEVICE_IP,
    Category.DEVICE_BROWSER,
    Category.BEHAVIOR_BROWSING,
)
"""The categories a processor may be allowed: what a share can produce."""


@dataclass(frozen=True, slots=True)
class ProcessorDraft:
    """What legal records about a provider and its contract."""

    name: str
    contact: str
    country: str
    contract_reference: str
    purposes: list[str]
    categories: list[str]
    active_from: datetime
    active_to: datetime | None = None
    notice_url: str = ""


LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _check_notice_url(url: str, p: v.Problems) -> str:
    """Blank, or an absolute https address (http only to this machine, for development)
    with no user name, password or fragment: where signed notices are POSTed."""
    url = url.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, host, port_ok = None, "", False
    plain_http_ok = parts is not None and parts.scheme == "http" and host in LOOPBACK
    if (
        len(url) > 500
        or parts is None
        or not port_ok
        or not host
        or not url.isprintable()
        or not url.isascii()
        or parts.username is not None
        or parts.fragment
        or not (parts.scheme == "https" or plain_http_ok)
    ):
        p.add(
            "noticeUrl",
            "Use an https address of at most 500 characters, with no user name or fragment "
            "(http only to localhost).",
        )
    return url


def _check_list(p: v.Problems, *, field: str, values: list[str], known: tuple[str, ...]) -> None:
    if not values:
        p.add(field, "Name at least one.")
    for i, value in enumerate(values):
        if value not in known:
            p.add(f"{field}[{i}]", f"Unknown; known: {', '.join(known)}.")
        elif values.index(value) != i:
            p.add(f"{field}[{i}]", "Named twice.")


def _checked(draft: ProcessorDraft) -> ProcessorDraft:
    """The draft normalised; InputInvalid with every problem at once."""
    p = v.Problems()
    name = v.text(draft.name, max_len=200, required=True, name="name", p=p)
    contact = v.email(draft.contact, p, "contact")
    country = draft.country.strip().upper()
    if country not in ISO_3166_ALPHA2:
        p.add("country", "Use an ISO 3166-1 alpha-2 country code, e.g. IE.")
    reference = v.text(
        draft.contract_reference, max_len=200, required=True, name="contractReference", p=p
    )
    _check_list(p, field="purposes", values=draft.purposes, known=tuple(PURPOSES))
    _check_list(p, field="categories", values=draft.categories, known=SHAREABLE)
    notice_url = _check_notice_url(draft.notice_url, p)
    start = as_utc(draft.active_from)
    end = as_utc(draft.active_to) if draft.active_to else None
    if end is not None and end <= start:
        p.add("activeTo", "The contract must end after it starts.")
    p.raise_if_any()
    return ProcessorDraft(
        name, contact, country, reference, draft.purposes, draft.categories, start, end, notice_url
    )


async def _name_taken(name: str, *, other_than: UUID | None = None) -> bool:
    query = Processor.filter(name=name)
    if other_than is not None:
        query = query.exclude(id=other_than)
    return await query.exists()


def _duplicate_name() -> InputInvalid:
    return InputInvalid(
        [FieldProblem("name", "DUPLICATE_NAME", "Another processor has this name.")]
    )


@contextlib.asynccontextmanager
async def _unique_name() -> AsyncIterator[None]:
    """A write in a savepoint: losing a race for a name to another legal employee is
    DUPLICATE_NAME (the unique index decides), and the caller's transaction goes on."""
    try:
        async with in_transaction():
            yield
    except IntegrityError:
        raise _duplicate_name() from None


async def create_processor(*, draft: ProcessorDraft, actor_id: UUID, now: datetime) -> Processor:
    """Register a provider (legal). InputInvalid for bad input or a name in use."""
    d = _checked(draft)
    if await _name_taken(d.name):
        raise _duplicate_name()
    async with _unique_name():
        return await Processor.create(
            name=d.name,
            contact=d.contact,
            country=d.country,
            contract_reference=d.contract_reference,
            purposes=list(d.purposes),
            categories=list(d.categories),
            active_from=d.active_from,
            active_to=d.active_to,
            notice_url=d.notice_url,
            created_by=actor_id,
            created_at=now,
            updated_by=actor_id,
            updated_at=now,
        )


async def update_processor(
    *, processor_id: UUID, draft: ProcessorDraft, actor_id: UUID, now: datetime
) -> Processor:
    """Replace a provider's record (legal): a new contract, narrower purposes, an end date.
    Past disclosures keep what they were; NOT_FOUND for an unknown processor."""
    d = _checked(draft)
    processor = await Processor.filter(id=processor_id).select_for_update().first()
    if processor is None:
        raise InputInvalid([FieldProblem("id", "NOT_FOUND", "No such processor.")])
    if await _name_taken(d.name, other_than=processor_id):
        raise _duplicate_name()
    processor.update_from_dict(
        {
            "name": d.name,
            "contact": d.contact,
            "country": d.country,
            "contract_reference": d.contract_reference,
            "purposes": list(d.purposes),
            "categories": list(d.categories),
            "active_from": d.active_from,
            "active_to": d.active_to,
            "notice_url": d.notice_url,
            "updated_by": actor_id,
            "updated_at": now,
        }
    )
    async with _unique_name():
        await processor.save()
    return processor


async def issue_notice_key(*, processor_id: UUID, actor_id: UUID, now: datetime) -> str:
    """A new key for the processor's notices and acknowledgements (legal), replacing any
    it had at once: the caller shows it once; it is never returned again."""
    key = signing.new_key()
    updated = await Processor.filter(id=processor_id).update(
        notice_secret=key, updated_by=actor_id, updated_at=now
    )
    if not updated:
        raise InputInvalid([FieldProblem("id", "NOT_FOUND", "No such processor.")])
    return key


def is_active(processor: Processor, *, now: datetime) -> bool:
    """Its contract has started and not ended."""
    return processor.active_from <= now and (
        processor.active_to is None or processor.active_to > now
    )


async def processors(*, active_at: datetime | None = None) -> list[Processor]:
    """Every processor by name; only those active at `active_at` when given."""
    found = await Processor.all().order_by("name")
    if active_at is None:
        return list(found)
    return [p for p in found if is_active(p, now=active_at)]
