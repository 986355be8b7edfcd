"""The outbox's second channel: a notice POSTed to a processor's endpoint, signed when it is
sent (api/recipients/signing.py), so a retry hours later carries a fresh timestamp and the
key in force then. A 2xx answer is delivery; anything else, or no answer within
`webhook_timeout_seconds`, is a failure the sender retries like a mail. Redirects are not
followed: the endpoint legal registered is the only one a notice goes to."""

from __future__ import annotations

import time

import httpx

from api.recipients import signing
from api.settings import Settings
from models import OutboxMessage, Processor

CHANNEL = "webhook"


class NoEndpoint(Exception):
    """The processor is gone, or has no endpoint or key any more: retried, then dead."""


class WebhookRefused(Exception):
    """The endpoint answered, but not with 2xx."""


async def post(row: OutboxMessage, *, settings: Settings) -> None:
    processor = await Processor.get_or_none(id=row.processor_id) if row.processor_id else None
    if processor is None or not processor.notice_url or not processor.notice_secret:
        raise NoEndpoint()
    body = row.body_text.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Custos-Notices/1",
        "Custos-Delivery": row.message_id or str(row.id),
        **signing.headers(processor.notice_secret, int(time.time()), body),
    }
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        response = await client.post(processor.notice_url, content=body, headers=headers)
    if not 200 <= response.status_code < 300:
        raise WebhookRefused(response.status_code)
