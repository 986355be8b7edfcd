"""What a notice says: the signed JSON a webhook carries, and the mail to a recipient with
no endpoint. Both name the customer only by the id every data set we shared carries
(`customerId`), the categories concerned and the request: nothing the recipient does not
already hold. A rectification says which categories changed, not their new values."""

from __future__ import annotations

import json
from datetime import datetime

from api.clock import iso
from api.recipients.vocabulary import FORMAT
from api.settings import Settings
from models import RecipientNotice

ACK_PATH = "/notices/acknowledge"
LINK_PATH = "/notices/"

_VERB = {"erasure": "erase", "rectification": "correct", "consent_withdrawn": "stop using"}
_WHAT = {
    "erasure": "erase the data below that you hold about this customer",
    "rectification": "correct the data below: the customer's values changed",
    "consent_withdrawn": "stop using the data below for the purpose named",
}


def public(settings: Settings, path: str) -> str:
    return settings.public_url.rstrip("/") + path


def body(notice: RecipientNotice, *, settings: Settings, respond_by: datetime | None) -> str:
    """The webhook's JSON (compact, keys sorted): signed as these very bytes."""
    document = {
        "format": FORMAT,
        "notice": str(notice.id),
        "event": notice.trigger,
        "request": str(notice.request_id) if notice.request_id else None,
        "purpose": notice.purpose or None,
        "subject": {"customerId": str(notice.customer_id)},
        "categories": list(notice.categories),
        "issuedAt": iso(notice.created_at),
        "respondBy": iso(respond_by),
        "acknowledge": public(settings, ACK_PATH),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def mail_text(
    notice: RecipientNotice,
    *,
    settings: Settings,
    respond_by: datetime | None,
    link_token: str,
    reminder: bool,
) -> tuple[str, str]:
    """(subject, text) of the mail to a recipient's contact."""
    what = _WHAT.get(notice.trigger, "act on the change below")
    verb = _VERB.get(notice.trigger, "act on")
    subject = f"{'Reminder: ' if reminder else ''}{settings.shop_name}: please {verb} "
    subject += f"customer data (notice {str(notice.id)[:8]})"
    lines = [
        f"{settings.shop_name} shared personal data with {notice.recipient} under your "
        "contract. The customer has exercised a right, and the law asks us to tell you.",
        "",
        f"Please {what}.",
        "",
        f"Notice: {notice.id}",
        f"Customer id (as in the data sets we sent you): {notice.customer_id}",
        f"Categories: {', '.join(notice.categories)}",
    ]
    if notice.purpose:
        lines.append(f"Purpose: {notice.purpose}")
    if notice.request_id:
        lines.append(f"Request: {notice.request_id}")
    if respond_by:
        lines.append(f"Please confirm by: {iso(respond_by)}")
    lines += [
        "",
        "When it is done, confirm it here (the link works once):",
        public(settings, LINK_PATH + link_token),
        "",
        "If you hold nothing about this customer, confirm all the same: the page lets you say so.",
    ]
    return subject[:200], "\n".join(lines) + "\n"
