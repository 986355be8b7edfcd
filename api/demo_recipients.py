"""Demo data for Article 19 (development only): Chloe's phone number went to two couriers
(two ledger rows), she corrected it, the privacy officer approved and fulfilled the request,
and both couriers acknowledged it, one saying it held nothing. Made through the same code
as the real thing; the mail it queued is dropped, as the demo accounts' verification mail
is, so that `custos mail send-pending` in the docs prints only what the docs do."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

from api.recipients.answers import acknowledge
from api.rights import lifecycle
from api.rights.rules import Kind
from api.services import Services
from api.sharing import ledger
from models import Customer, Employee, OutboxMessage, Processor, RecipientNotice, RightsRequest

CUSTOMER = "chloe@example.com"
COURIERS = ("Parcel Express", "Relay Couriers")
NEW_PHONE = "+33 6 12 34 56 78"
_CODE = re.compile(r"code: (\d{6})")


async def seed_corrected_phone(*, services: Services) -> str:
    """Once: Chloe's completed rectification, told to both couriers and acknowledged."""
    chloe = await Customer.get(email=CUSTOMER)
    if await RightsRequest.exists(customer_id=chloe.id):
        return f"{CUSTOMER}: a completed correction, acknowledged by {' and '.join(COURIERS)}"
    first_mail = await OutboxMessage.all().order_by("-id").first().values_list("id", flat=True)
    legal = await Employee.get(email="legal@staff.example.com")
    officer = await Employee.get(email="privacy.officer@staff.example.com")
    couriers = [await Processor.get(name=name) for name in COURIERS]
    await ledger.append(
        [
            ledger.Entry(
                at=services.clock.now() - timedelta(days=20),
                customer_id=chloe.id,
                recipient=p.name,
                processor_id=p.id,
                categories=["contact.phone"],
                purpose="service",
                legal_basis=ledger.LegalBasis.PROCESSOR_CONTRACT,
                reference=p.contract_reference,
                recorded_by=legal.id,
            )
            for p in couriers
        ]
    )
    actor = lifecycle.Actor("customer", chloe.id)
    submitted = await lifecycle.submit(
        services=services,
        customer_id=chloe.id,
        kind=Kind.RECTIFICATION,
        details="My new mobile number",
        changes={"phone": NEW_PHONE},
        actor=actor,
    )
    request_id = UUID(str(submitted.request.id))
    mail = await OutboxMessage.filter(kind="rights_code", recipient=CUSTOMER).order_by("-id")
    code = _CODE.search(mail[0].body_text)
    assert code, "the demo's code mail"  # noqa: S101 (our own template)
    await lifecycle.verify(
        services=services, request_id=request_id, code=code.group(1), customer_id=chloe.id
    )
    await lifecycle.review(
        services=services, request_id=request_id, officer_id=officer.id, approve=True, reason=""
    )
    await lifecycle.fulfil(
        services=services, request_id=request_id, officer_id=officer.id, decide=lambda *_: True
    )
    for notice in await RecipientNotice.filter(request_id=request_id).order_by("recipient"):
        outcome = "done" if notice.recipient == COURIERS[0] else "no_record"
        await acknowledge(
            notice_id=notice.id,
            processor_id=notice.processor_id,
            outcome=outcome,
            note="",
            now=services.clock.now(),
        )
    await OutboxMessage.filter(id__gt=int(str(first_mail or 0))).delete()
    return f"{CUSTOMER}: a completed correction, acknowledged by {' and '.join(COURIERS)}"
