from __future__ import annotations

from datetime import datetime

import strawberry

from models import SupportCase as SupportCaseModel


@strawberry.type
class SupportCase:
    id: strawberry.ID
    customer_id: strawberry.ID
    subject: str
    message: str
    status: str
    assignee_id: strawberry.ID | None
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def from_model(cls, m: SupportCaseModel) -> SupportCase:
        return cls(
            id=strawberry.ID(str(m.id)),
            customer_id=strawberry.ID(str(m.customer_id)),
            subject=m.subject,
            message=m.message,
            status=m.status,
            assignee_id=strawberry.ID(str(m.assignee_id)) if m.assignee_id else None,
            created_at=m.created_at,
            closed_at=m.closed_at,
        )
