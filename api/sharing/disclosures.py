"""Disclosures legal records (policy sections 3B and 3C): to an authority under a legal
obligation, court order or regulator's demand, in someone's vital interest, or with the
customer's consent. Each is a row of the ledger; a non-disclosure order hides it from the
customer until its date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from api.clock import as_utc
from api.consent.service import may_process
from api.customers import validation as v
from api.errors import FieldProblem, InputInvalid
from api.rights.holds import HOLDABLE
from api.services import Services
from api.sharing import ledger
from authz.registry import CONSENT_PURPOSES, PURPOSES
from models import Customer, Disclosure

NOTE_MAX = 2000
GAGGABLE = frozenset(
    {ledger.LegalBasis.LEGAL_OBLIGATION, ledger.LegalBasis.COURT_ORDER, ledger.LegalBasis.REGULATOR}
)
"""The bases under which an authority may forbid telling the customer (for a time)."""


@dataclass(frozen=True, slots=True)
class DisclosureDraft:
    customer_id: UUID
    recipient: str
    categories: list[str]
    legal_basis: ledger.LegalBasis
    reference: str
    note: str = ""
    purpose: str | None = None
    nondisclosure_until: datetime | None = None


def _check(p: v.Problems, draft: DisclosureDraft, *, now: datetime) -> None:
    v.text(draft.recipient, max_len=200, required=True, name="recipient", p=p)
    consent = draft.legal_basis is ledger.LegalBasis.CONSENT
    v.text(draft.reference, max_len=200, required=not consent, name="reference", p=p)
    v.text(draft.note, max_len=NOTE_MAX, required=False, name="note", p=p)
    if not draft.categories:
        p.add("categories", "Name at least one data category.")
    for i, category in enumerate(draft.categories):
        if category not in HOLDABLE:
            p.add(f"categories[{i}]", f"Unknown data category; known: {', '.join(HOLDABLE)}.")
        elif draft.categories.index(category) != i:
            p.add(f"categories[{i}]", "Named twice.")
    if draft.legal_basis is ledger.LegalBasis.PROCESSOR_CONTRACT:
        p.add("legalBasis", "Shares with processors are recorded by shareWithProcessor.")
    if draft.purpose and draft.purpose not in PURPOSES:
        p.add("purpose", f"Unknown purpose; known: {', '.join(PURPOSES)}.")
    elif consent and draft.purpose not in CONSENT_PURPOSES:
        p.add("purpose", "A disclosure on consent names the purpose consented to.")
    until = draft.nondisclosure_until
    if until is not None and draft.legal_basis not in GAGGABLE:
        p.add("nonDisclosureUntil", "Only a legal obligation, court or regulator can order it.")
    elif until is not None and as_utc(until) <= now:
        p.add("nonDisclosureUntil", "The date must be in the future.")


async def record_disclosure(
    *, services: Services, draft: DisclosureDraft, actor_id: UUID
) -> Disclosure:
    """Append the disclosure to the ledger (legal). InputInvalid, with nothing recorded,
    for bad input, an unknown customer, or a consent-based disclosure without consent."""
    now = services.clock.now()
    p = v.Problems()
    _check(p, draft, now=now)
    p.raise_if_any()
    if not await Customer.filter(id=draft.customer_id).exists():
        raise InputInvalid([FieldProblem("customerId", "NOT_FOUND", "No such customer.")])
    purpose = draft.purpose or ""
    consent = draft.legal_basis is ledger.LegalBasis.CONSENT
    if consent and not await may_process(
        services=services, customer_id=draft.customer_id, purpose=purpose
    ):
        message = "The customer does not consent to this purpose now."
        raise InputInvalid([FieldProblem("purpose", "CONSENT_REQUIRED", message)])
    until = draft.nondisclosure_until
    [row] = await ledger.append(
        [
            ledger.Entry(
                at=now,
                customer_id=draft.customer_id,
                recipient=draft.recipient.strip(),
                categories=list(draft.categories),
                legal_basis=draft.legal_basis,
                recorded_by=actor_id,
                purpose=purpose,
                reference=draft.reference.strip(),
                nondisclosure_until=as_utc(until) if until else None,
                note=draft.note.strip(),
            )
        ]
    )
    return row
