"""GraphQL types of processors and the disclosure ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from api.pagination import PageInfo, encode_cursor
from api.permissions import only
from api.sharing import ledger, processors
from api.types import InputError
from authz.registry import Role
from models import Disclosure as DisclosureModel
from models import Processor as ProcessorModel

DisclosureBasis = strawberry.enum(ledger.LegalBasis, name="DisclosureBasis")
LEDGER_CURSOR = "ledger"


def _id(value: object) -> strawberry.ID:
    return strawberry.ID(str(value))


@strawberry.type(description="A service provider we share personal data with.")
class Processor:
    id: strawberry.ID
    name: str
    contact: str = strawberry.field(description="The provider's privacy contact.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2: where it processes data.")
    contract_reference: str
    purposes: list[str] = strawberry.field(description="What it may use the data for.")
    categories: list[str] = strawberry.field(description="The data categories it may receive.")
    active_from: datetime
    active_to: datetime | None
    active: bool = strawberry.field(description="The contract is in force now.")
    updated_at: datetime
    notice_url: str = strawberry.field(
        description="Where it receives signed notices of erasures, rectifications and "
        "withdrawn consents (blank: they are mailed to `contact`)."
    )
    has_notice_key: bool = strawberry.field(
        description="A notice key was issued (issueProcessorNoticeKey); notices go to "
        "`noticeUrl` only with one. The key itself is shown once, when issued."
    )

    @classmethod
    def from_model(cls, m: ProcessorModel, *, now: datetime) -> Processor:
        return cls(
            id=_id(m.id),
            name=m.name,
            contact=m.contact,
            country=m.country,
            contract_reference=m.contract_reference,
            purposes=list(m.purposes),
            categories=list(m.categories),
            active_from=m.active_from,
            active_to=m.active_to,
            active=processors.is_active(m, now=now),
            updated_at=m.updated_at,
            notice_url=m.notice_url,
            has_notice_key=bool(m.notice_secret),
        )


@strawberry.input
class ProcessorInput:
    name: str
    contact: str = strawberry.field(description="An email address.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2, e.g. IE.")
    contract_reference: str
    purposes: list[str]
    categories: list[str] = strawberry.field(
        description="Of contact.email, contact.phone, contact.address, device.ip, "
        "device.browser, behavior.browsing."
    )
    active_from: datetime
    active_to: datetime | None = None
    notice_url: str = strawberry.field(
        default="",
        description="An https address that receives signed notices (blank: by mail to the "
        "contact). Notices go there once a key is issued (issueProcessorNoticeKey).",
    )

    def to_draft(self) -> processors.ProcessorDraft:
        return processors.ProcessorDraft(
            name=self.name,
            contact=self.contact,
            country=self.country,
            contract_reference=self.contract_reference,
            purposes=list(self.purposes),
            categories=list(self.categories),
            active_from=self.active_from,
            active_to=self.active_to,
            notice_url=self.notice_url,
        )


@strawberry.type(description="The processor was registered or its record replaced.")
class ProcessorSaved:
    processor: Processor


@strawberry.type(
    description="A new notice key: give it to the processor now, it is not shown again. It "
    "replaces the previous key at once."
)
class NoticeKeyIssued:
    processor: Processor
    notice_key: str = strawberry.field(
        description="64 hex characters: the HMAC-SHA256 key of its notices and answers."
    )


IssueNoticeKeyPayload = Annotated[
    NoticeKeyIssued | InputError, strawberry.union("IssueNoticeKeyPayload")
]


SaveProcessorPayload = Annotated[
    ProcessorSaved | InputError, strawberry.union("SaveProcessorPayload")
]


@strawberry.input(description="Which customers to share: give at least one condition.")
class ShareFilter:
    country: str | None = strawberry.field(default=None, description="Of the address.")
    registered_since: datetime | None = None


@strawberry.type(description="Customers considered but left out of the data set, by reason.")
class ShareLeftOut:
    no_consent: int = strawberry.field(description="The purpose needs consent they did not give.")
    forbidden: int = strawberry.field(description="Your role may not disclose their data.")
    erased: int = strawberry.field(description="Their account was erased.")


@strawberry.type(description="The data set for the processor; each customer in it is ledgered.")
class DataShared:
    processor: Processor
    purpose: str
    categories: list[str]
    dataset: JSON = strawberry.field(
        description='`{"format": "custos.share/1", ..., "customers": [...]}`'
    )
    shared: int
    left_out: ShareLeftOut
    next_after: strawberry.ID | None = strawberry.field(
        description="With a filter: pass as `after` for the next customers; null at the end."
    )


ShareWithProcessorPayload = Annotated[
    DataShared | InputError, strawberry.union("ShareWithProcessorPayload")
]


@strawberry.type(description="One disclosure of one customer's data (staff view).")
class Disclosure:
    id: strawberry.ID
    at: datetime
    customer_id: strawberry.ID
    recipient: str
    processor_id: strawberry.ID | None
    categories: list[str]
    purpose: str | None
    legal_basis: DisclosureBasis  # type: ignore[valid-type]
    reference: str
    non_disclosure_until: datetime | None
    recorded_by: strawberry.ID
    hash: str
    note_text: strawberry.Private[str]

    @strawberry.field(
        extensions=only(Role.LEGAL),
        description="Legal's own note (legal only; blanked when the customer is erased).",
    )
    def note(self) -> str | None:
        return self.note_text

    @classmethod
    def from_model(cls, m: DisclosureModel) -> Disclosure:
        return cls(
            id=_id(m.id),
            at=m.at,
            customer_id=_id(m.customer_id),
            recipient=m.recipient,
            processor_id=_id(m.processor_id) if m.processor_id else None,
            categories=list(m.categories),
            purpose=m.purpose or None,
            legal_basis=ledger.LegalBasis(m.legal_basis),
            reference=m.reference,
            non_disclosure_until=m.nondisclosure_until,
            recorded_by=_id(m.recorded_by),
            hash=m.hash,
            note_text=m.note,
        )


@strawberry.type(description="A disclosure of your data: to whom, what, and on what basis.")
class CustomerDisclosure:
    at: datetime
    recipient: str
    categories: list[str]
    purpose: str | None
    legal_basis: DisclosureBasis  # type: ignore[valid-type]
    reference: str

    @classmethod
    def from_model(cls, m: DisclosureModel) -> CustomerDisclosure:
        return cls(
            at=m.at,
            recipient=m.recipient,
            categories=list(m.categories),
            purpose=m.purpose or None,
            legal_basis=ledger.LegalBasis(m.legal_basis),
            reference=m.reference,
        )


@strawberry.type(description="The disclosure is in the ledger.")
class DisclosureRecorded:
    disclosure: Disclosure


RecordDisclosurePayload = Annotated[
    DisclosureRecorded | InputError, strawberry.union("RecordDisclosurePayload")
]


@strawberry.input(description="Conditions on the ledger, all optional, ANDed.")
class DisclosureFilter:
    customer_id: strawberry.ID | None = None
    recipient: str | None = None
    processor_id: strawberry.ID | None = None
    legal_basis: DisclosureBasis | None = None  # type: ignore[valid-type]
    since: datetime | None = None
    until: datetime | None = strawberry.field(default=None, description="Exclusive.")


@strawberry.type
class DisclosureEdge:
    cursor: str
    node: Disclosure


@strawberry.type(description="The ledger, newest first.")
class DisclosureConnection:
    edges: list[DisclosureEdge]
    page_info: PageInfo

    @classmethod
    def from_rows(cls, rows: list[DisclosureModel], *, first: int) -> DisclosureConnection:
        shown = rows[:first]
        edges = [
            DisclosureEdge(cursor=encode_cursor(LEDGER_CURSOR, m.id), node=Disclosure.from_model(m))
            for m in shown
        ]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=end))


def left_out(counts: dict[str, Any]) -> ShareLeftOut:
    return ShareLeftOut(
        no_consent=counts.get("no_consent", 0),
        forbidden=counts.get("forbidden", 0),
        erased=counts.get("erased", 0),
    )
