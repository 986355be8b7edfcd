"""The certificate of an erasure (docs/RECIPIENTS.md, "Proof of erasure"): once an erasure
is completed (every recipient acknowledged, or an officer recorded why not), the customer
can download what was done, per data category, which recipients acknowledged it, and the
decision-log rows that record it, signed with the log's key (verifier/certificate.py has
the format and the check, which needs nothing but the published keys).

The download link is mailed with the erasure's answer, since the account it concerns is
gone: `/certificates/<request id>.<tag>`, the tag an HMAC of the id under the secret key.
Nothing is stored; the certificate is built and signed when it is fetched."""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

from tortoise.expressions import Q

from api.audit.log_config import log_config
from api.clock import iso
from api.recipients.service import shown_to_customer
from api.rights.rules import Kind, Status
from api.security.tokens import id_of_tagged, tagged_id
from api.services import Services
from authz import checkpoints, log_keys, log_tree
from models import AuditEvent, RecipientNotice, RightsRequest, RightsTransition
from verifier.certificate import Certificate

_PURPOSE = "custos.erasure-certificate.v1"
MAX_EVIDENCE = 500
"""Rows cited at most (an erasure's decisions are a few dozen)."""


class NotReady(Exception):
    """The erasure is not completed yet: `waiting` recipients still to answer."""

    def __init__(self, waiting: int) -> None:
        super().__init__(waiting)
        self.waiting = waiting


def link_token(secret: str, request_id: UUID) -> str:
    return tagged_id(secret, _PURPOSE, request_id)


def request_of(secret: str, token: str) -> UUID | None:
    """The request a token is for, when its tag is right; else None."""
    return id_of_tagged(secret, _PURPOSE, token)


async def _evidence(customer_id: UUID, fulfilled: datetime) -> list[int]:
    """The decision-log rows about the customer that record the erasure: each category's
    erase decision, the fulfilment, and the recipients' answers and officers' excuses."""
    what = Q(action="erase") | Q(event="rights", operation="fulfil") | Q(event="recipients")
    rows = (
        await AuditEvent.filter(what, subject_id__contains=str(customer_id), at__gte=fulfilled)
        .order_by("id")
        .limit(MAX_EVIDENCE)
        .values_list("id", flat=True)
    )
    return [int(str(r)) for r in rows]


async def certificate(*, services: Services, request_id: UUID) -> str | None:
    """The signed certificate document (JSON) of a completed erasure; None for an unknown
    request or one of another kind; NotReady while recipients are awaited."""
    request = await RightsRequest.get_or_none(id=request_id)
    if request is None or request.kind != Kind.ERASURE or request.completed_at is None:
        return None
    if request.status != Status.COMPLETED:
        waiting = await RecipientNotice.filter(
            request_id=request_id, status__in=["pending", "notified", "failed"]
        ).count()
        raise NotReady(waiting)
    now = services.clock.now()
    config = log_config(services.settings)
    events = await _evidence(UUID(str(request.customer_id)), request.completed_at)
    checkpoint = await checkpoints.sign(config, now)
    leaves = await log_tree.leaves_of(events)
    if len(leaves) < len(events) or any(leaf.index >= checkpoint.size for leaf in leaves.values()):
        checkpoint = await checkpoints.sign(config, now, force=True)
        leaves = await log_tree.leaves_of(events)
    indexes = sorted(leaf.index for leaf in leaves.values())
    proofs = await log_tree.inclusion_proofs(indexes, checkpoint.size)
    by_index = {leaf.index: leaf.hash for leaf in leaves.values()}
    done = (
        await RightsTransition.filter(request_id=request_id, to_status=Status.COMPLETED)
        .order_by("-id")
        .first()
    )
    notices = [
        n
        for n in await RecipientNotice.filter(request_id=request_id).order_by("recipient", "id")
        if shown_to_customer(n, now)
    ]
    c = Certificate(
        origin=config.origin,
        request=str(request.id),
        customer=str(request.customer_id),
        fulfilled=iso(request.completed_at) or "",
        completed=iso(done.at if done else request.completed_at) or "",
        categories=[
            (
                name,
                str(result.get("action", "erased")),
                {"why": result.get("why", ""), "references": list(result.get("references", []))},
            )
            for name, result in sorted((request.outcome.get("categories") or {}).items())
        ],
        recipients=[
            (n.recipient, n.status, n.outcome, iso(n.acknowledged_at) or "") for n in notices
        ],
        evidence=[(index, by_index[index]) for index in indexes],
        tree_size=checkpoint.size,
        root=bytes.fromhex(checkpoint.root),
    )
    key = await log_keys.ensure(config.origin, config.key_dir, now)
    signer = log_keys.load_signer(config.key_dir, key)
    note = c.text + "\n" + signer.signature_line(c.text, int(now.timestamp()))
    document = {
        "format": "custos.erasure-certificate-document/1",
        "certificate": note,
        "checkpoint": checkpoint.note,
        "proofs": {str(i): [h.hex() for h in proofs[i]] for i in indexes},
    }
    return json.dumps(document, indent=2) + "\n"
