"""Erasure (policy section 5.1, docs/ARCHITECTURE.md: rights requests): delete or irreversibly
anonymise every row about one customer in every table, except the categories under an active
legal hold.

Called by the fulfilment of an approved erasure request, inside its transaction: a failure
anywhere leaves nothing half-erased. Every step is one bulk statement (or two), whatever the
number of rows. What happens to each table, and why, is in docs/DECISIONS.md ("Erasure and
legal holds"); the audit log is not touched (it holds ids only, and is append-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from api.rights.holds import held_categories
from api.security.authn import account_key
from api.security.tokens import keyed_digest
from api.services import Services
from api.sharing.ledger import blank_notes
from authz.registry import Category
from models import (
    ConsentRecord,
    Customer,
    DataExport,
    EmailToken,
    LoginFailure,
    OutboxMessage,
    PasswordResetToken,
    PolicyAcceptance,
    RightsRequest,
    Session,
    SupportCase,
    VisitEvent,
)

NO_PASSWORD = "!erased"  # noqa: S105 (not a hash: no password ever matches it)
"""Stored as the password hash: not an argon2 hash, so every check answers no."""

C = Category
VISIT_COLUMNS: dict[Category, dict[str, Any]] = {
    C.BEHAVIOR_BROWSING: {"page": "", "action": "", "referrer": "", "campaign": ""},
    C.DEVICE_BROWSER: {"browser": "", "os": "", "device_type": "", "language": ""},
    C.DEVICE_IP: {"ip_full": None, "ip_truncated": None},
}
"""The columns of a visit event that carry each category, and their erased value."""
CONTACT_COLUMNS: dict[Category, dict[str, Any]] = {
    C.CONTACT_PHONE: {"phone": ""},
    C.CONTACT_ADDRESS: {
        "address_line1": "",
        "address_line2": "",
        "address_city": "",
        "address_postal_code": "",
        "address_country": "",
    },
}

ERASED_WHY: dict[Category, tuple[str, str]] = {
    C.CONTACT_EMAIL: (
        "erased",
        "Your email address is replaced by a placeholder, and mail waiting to be sent to "
        "you is deleted.",
    ),
    C.CONTACT_PHONE: ("erased", "Your phone number is erased."),
    C.CONTACT_ADDRESS: ("erased", "Your postal address is erased."),
    C.ACCOUNT_CREDENTIALS: (
        "erased",
        "Your password is erased and every session ended: nobody can sign in to the "
        "account any more.",
    ),
    C.DEVICE_IP: ("erased", "The IP addresses recorded with your visits are erased."),
    C.DEVICE_BROWSER: (
        "erased",
        "The browser, system and language recorded with your visits are erased.",
    ),
    C.BEHAVIOR_BROWSING: (
        "erased",
        "The pages you visited and what you did there are erased.",
    ),
    C.CONSENT_HISTORY: (
        "anonymised",
        "We keep which purposes you agreed to or refused, when, and which policy version "
        "and which versions you accepted, without IP address or browser: it proves we had "
        "a legal basis for past processing.",
    ),
    C.RIGHTS_REQUESTS: (
        "anonymised",
        "We keep the kind, dates and outcome of your requests as proof of how we answered "
        "them; what you wrote in them is erased.",
    ),
    C.SUPPORT_CASES: ("erased", "Your support cases are erased."),
}


@dataclass(frozen=True, slots=True)
class _Erasure:
    """One erasure: whose, what is held, and the transaction it runs in."""

    conn: BaseDBAsyncClient
    customer: Customer
    now: datetime
    secret: str
    held: dict[str, list[str]]

    @property
    def customer_id(self) -> UUID:
        return UUID(str(self.customer.id))

    @property
    def addresses(self) -> list[str]:
        """The account's address and an address waiting for confirmation, if any."""
        return [a for a in (self.customer.email, self.customer.pending_email) if a]

    def keeps(self, category: Category) -> bool:
        return category in self.held


async def erase_customer(
    *,
    services: Services,
    customer_id: UUID,
    request_id: UUID,
    now: datetime,
    using_db: BaseDBAsyncClient,
) -> dict[str, dict[str, Any]]:
    """Erase the customer's data in the transaction `using_db`, keeping the categories
    under an active legal hold. Returns per category `{"action": "erased" | "kept" |
    "anonymised", "why": ..., "references": [hold references]}`: the answer to the
    customer. Personal data is never logged."""
    customer = await Customer.filter(id=customer_id).using_db(using_db).select_for_update().get()
    await _check_request(customer_id=customer_id, request_id=request_id, conn=using_db)
    held = await held_categories(customer_id=customer_id, now=now, using_db=using_db)
    erasure = _Erasure(using_db, customer, now, services.secret, held)
    await _end_sign_in(erasure)
    services.sessions.forget_viewers()
    await _delete_mail(erasure)
    await _erase_visits(erasure)
    await _anonymise_consents(erasure)
    await _erase_support_cases(erasure)
    await _erase_exports(erasure)
    await _blank_rights_requests(erasure)
    await blank_notes(customer_id=customer_id, conn=using_db)
    await _anonymise_customer(erasure)
    return outcome(held)


async def _check_request(*, customer_id: UUID, request_id: UUID, conn: BaseDBAsyncClient) -> None:
    """A guard against a wrong id: the request must be this customer's erasure request."""
    mine = RightsRequest.filter(id=request_id, customer_id=customer_id, kind="erasure")
    if not await mine.using_db(conn).exists():
        raise ValueError("the erasure request is not this customer's")


def outcome(held: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """The answer per category: what was done, why, and the holds that kept it."""
    result: dict[str, dict[str, Any]] = {}
    for category, (action, why) in ERASED_WHY.items():
        references = held.get(category, [])
        if references:
            action = "kept"
            why = f"Kept under a legal hold ({', '.join(references)}) until it ends."
        result[category.value] = {"action": action, "why": why, "references": references}
    return result


async def _end_sign_in(e: _Erasure) -> None:
    """Sessions, email tokens, password-reset links and the account's sign-in failures
    (keyed by a digest of the address): the person can no longer sign in, and nothing keyed
    by them remains."""
    conn, customer_id = e.conn, e.customer_id
    await Session.filter(customer_id=customer_id).using_db(conn).delete()
    await EmailToken.filter(customer_id=customer_id).using_db(conn).delete()
    await PasswordResetToken.filter(customer_id=customer_id).using_db(conn).delete()
    keys = [keyed_digest(e.secret, "throttle-account", account_key(a)) for a in e.addresses]
    await LoginFailure.filter(scope="account", key__in=keys).using_db(conn).delete()


async def _delete_mail(e: _Erasure) -> None:
    """Every message to the customer, pending ones too: the outbox is a delivery queue,
    not a record, so a hold on the address keeps the address, not the mail."""
    to_them = Q(customer_id=e.customer_id) | Q(recipient__in=e.addresses)
    await OutboxMessage.filter(to_them).using_db(e.conn).delete()


async def _visits_of(e: _Erasure) -> Q:
    """The customer's events and the anonymous events of the visitor ids attached to them
    (the same `visitor_digest`): both are about the same person."""
    digests = (
        await VisitEvent.filter(customer_id=e.customer_id, visitor_digest__not_isnull=True)
        .using_db(e.conn)
        .distinct()
        .values_list("visitor_digest", flat=True)
    )
    theirs = Q(customer_id=e.customer_id)
    if digests:
        theirs |= Q(customer_id=None, visitor_digest__in=list(digests))
    return theirs


async def _erase_visits(e: _Erasure) -> None:
    """Deleted, unless a visit category is held: then the rows stay with only the held
    categories' columns (the visitor digest stays, to keep the anonymous rows theirs)."""
    theirs = await _visits_of(e)
    rows = VisitEvent.filter(theirs).using_db(e.conn)
    if not any(e.keeps(c) for c in VISIT_COLUMNS):
        await rows.delete()
        return
    blanked: dict[str, Any] = {}
    for category, columns in VISIT_COLUMNS.items():
        if not e.keeps(category):
            blanked.update(columns)
    if blanked:
        await rows.update(**blanked)


async def _anonymise_consents(e: _Erasure) -> None:
    """Consent records and policy acceptances stay as proof of a legal basis, without the
    truncated IP and the user agent, unless the consent history is held."""
    if e.keeps(C.CONSENT_HISTORY):
        return
    for model in (ConsentRecord, PolicyAcceptance):
        await (
            model.filter(customer_id=e.customer_id)
            .using_db(e.conn)
            .update(ip_truncated=None, user_agent=None)
        )


async def _erase_support_cases(e: _Erasure) -> None:
    if not e.keeps(C.SUPPORT_CASES):
        await SupportCase.filter(customer_id=e.customer_id).using_db(e.conn).delete()


async def _erase_exports(e: _Erasure) -> None:
    """Access exports hold a copy of everything: deleted whatever is held (the held data
    itself stays where it lives)."""
    await DataExport.filter(customer_id=e.customer_id).using_db(e.conn).delete()


async def _blank_rights_requests(e: _Erasure) -> None:
    """Every request of the customer, this one included, keeps kind, status, dates,
    decisions and outcome; what the customer wrote (details, proposed changes, the
    before and after of a rectification) is blanked, unless rights requests are held."""
    if e.keeps(C.RIGHTS_REQUESTS):
        return
    await (
        RightsRequest.filter(customer_id=e.customer_id)
        .using_db(e.conn)
        .update(details="", changes={}, before={}, after={})
    )


async def _anonymise_customer(e: _Erasure) -> None:
    """The row stays (the audit log and the request record refer to its id), with a
    placeholder address unique to it, no password, and no contact data not held."""
    values: dict[str, Any] = {
        "password_hash": NO_PASSWORD,
        "last_login_at": None,
        "updated_at": e.now,
    }
    if not e.keeps(C.CONTACT_EMAIL):
        values.update(
            email=f"erased-{e.customer_id}@erased.invalid",
            pending_email=None,
            email_verified_at=None,
        )
    for category, columns in CONTACT_COLUMNS.items():
        if not e.keeps(category):
            values.update(columns)
    await Customer.filter(id=e.customer_id).using_db(e.conn).update(**values)
