"""One way to write a consent record, whatever its source."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from api.security.network import truncate_ip
from authz.registry import ConsentSource
from models import ConsentRecord

if TYPE_CHECKING:
    from api.customers.service import RequestMeta


def consent_record(
    *,
    customer_id: UUID,
    purpose: str,
    granted: bool,
    source: ConsentSource,
    meta: RequestMeta,
    at: datetime,
    policy_version: str | None,
) -> ConsentRecord:
    """An unsaved record: the policy version in force at `at` (see
    `PolicyBook.version_in_force`), the IP truncated, the user agent cut to its column."""
    return ConsentRecord(
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        source=source,
        policy_version=policy_version,
        ip_truncated=truncate_ip(meta.ip),
        user_agent=(meta.user_agent or "")[:300] or None,
        at=at,
    )
