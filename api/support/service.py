"""Support cases (policy section 8): a customer opens one; customer care works the queue.
A case sent again while the same one (subject and message) is open is that case."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from tortoise.transactions import in_transaction

from api.customers import validation as v
from api.errors import NotFound
from api.serial import lock_customer
from api.services import Services
from models import SupportCase

OPEN = "open"
CLOSED = "closed"


async def open_case(
    *, services: Services, customer_id: UUID, subject: str, message: str
) -> SupportCase:
    p = v.Problems()
    clean_subject = subject.strip()
    clean_message = message.strip()
    if not clean_subject or len(clean_subject) > 200:
        p.add("subject", "A subject of 1 to 200 characters is required.")
    if not clean_message or len(clean_message) > 10_000:
        p.add("message", "A message of 1 to 10,000 characters is required.")
    p.raise_if_any()
    async with in_transaction() as conn:
        # The same case sent again (ten times at once, or a retried request) is the case
        # already open, not another one (issue 15): the lookup waits for any concurrent
        # opening's commit.
        await lock_customer(conn, customer_id)
        same = (
            await SupportCase.filter(
                customer_id=customer_id, status=OPEN, subject=clean_subject, message=clean_message
            )
            .using_db(conn)
            .order_by("created_at", "id")
            .first()
        )
        if same is not None:
            return same
        return await SupportCase.create(
            customer_id=customer_id,
            subject=clean_subject,
            message=clean_message,
            created_at=services.clock.now(),
            using_db=conn,
        )


async def queue(*, status: str) -> list[SupportCase]:
    return await SupportCase.filter(status=status).order_by("created_at", "id")


async def cases_of_customers(customer_ids: Sequence[UUID]) -> list[list[SupportCase]]:
    """Each customer's cases, newest first, in one query (a batch loader)."""
    cases: dict[UUID, list[SupportCase]] = {i: [] for i in customer_ids}
    rows = await SupportCase.filter(customer_id__in=list(customer_ids)).order_by(
        "-created_at", "id"
    )
    for case in rows:
        cases[UUID(str(case.customer_id))].append(case)
    return [cases[i] for i in customer_ids]


async def _case(case_id: UUID) -> SupportCase:
    case = await SupportCase.get_or_none(id=case_id)
    if case is None:
        raise NotFound("No such support case.")
    return case


async def assign(*, case_id: UUID, employee_id: UUID) -> SupportCase:
    case = await _case(case_id)
    case.assignee_id = str(employee_id)
    await case.save(update_fields=["assignee_id"])
    return case


async def close(*, services: Services, case_id: UUID) -> SupportCase:
    case = await _case(case_id)
    if case.status != CLOSED:
        # Conditional: of two closings at once, one sets the time, the other finds it set.
        await (
            SupportCase.filter(id=case_id)
            .exclude(status=CLOSED)
            .update(status=CLOSED, closed_at=services.clock.now())
        )
        case = await _case(case_id)
    return case
