from __future__ import annotations

from datetime import datetime

import strawberry

from api.guards import Access, personal
from authz.registry import Category
from models import SupportCase as SupportCaseModel


@strawberry.type(description="A support case; what the customer wrote is guarded.")
class SupportCase:
    id: strawberry.ID
    customer_id: strawberry.ID
    subject: str | None = personal(Category.SUPPORT_CASES)
    message: str | None = personal(Category.SUPPORT_CASES)
    status: str
    assignee_id: strawberry.ID | None
    created_at: datetime
    closed_at: datetime | None
    access: strawberry.Private[Access]

    @classmethod
    def from_model(
        cls, m: SupportCaseModel, *, purpose: str, conditions: tuple[str, ...] = ()
    ) -> SupportCase:
        return cls(
            id=strawberry.ID(str(m.id)),
            customer_id=strawberry.ID(str(m.customer_id)),
            subject=m.subject,
            message=m.message,
            status=m.status,
            assignee_id=strawberry.ID(str(m.assignee_id)) if m.assignee_id else None,
            created_at=m.created_at,
            closed_at=m.closed_at,
            access=Access(subject_id=str(m.customer_id), purpose=purpose, conditions=conditions),
        )
