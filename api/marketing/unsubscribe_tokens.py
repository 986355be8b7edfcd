"""Signed unsubscribe tokens (policy section 5.2, docs/ARCHITECTURE.md: mail): the opaque part of
the `List-Unsubscribe` link in every marketing message.

A token is stateless: nothing is stored when a message is sent, so a link in a mail from
months ago keeps working until it expires. It is URL-safe base64 (no padding) of

    version (1 byte) | customer id (16) | issue day (2, days since 1970-01-01 UTC)
    | purpose (ASCII, the rest) | tag (16)

where the tag is HMAC-SHA256 of everything before it under the secret key, domain-separated
from every other use of the key and truncated to 128 bits. After a key rotation, a token
tagged under one of the previous keys (CUSTOS_PREVIOUS_SECRET_KEYS) still reads; new
tokens are tagged under the current key only. A marketing.email token is 67
characters. Nobody can make one without the key, or change the customer, purpose or day of
one. Tokens are never logged."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from datetime import UTC, date, datetime
from uuid import UUID

from api.security.secret_keys import verifying_keys
from authz.registry import CONSENT_PURPOSES

VERSION = 1
_DOMAIN = b"custos.unsubscribe.v1\x00"
_TAG_BYTES = 16
_DAY = struct.Struct(">H")
_HEADER = 1 + 16 + _DAY.size
_EPOCH = date(1970, 1, 1)
MAX_PURPOSE_CHARS = 32
MAX_TOKEN_CHARS = 4 * (_HEADER + MAX_PURPOSE_CHARS + _TAG_BYTES) // 3 + 1
"""Longer input is refused before any decoding."""
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_PURPOSE = re.compile(rf"[a-z0-9_.]{{1,{MAX_PURPOSE_CHARS}}}", re.ASCII)

MALFORMED = "MALFORMED"
TAMPERED = "TAMPERED"
EXPIRED = "EXPIRED"
UNKNOWN_PURPOSE = "UNKNOWN_PURPOSE"
UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"


class InvalidUnsubscribeToken(Exception):
    """The token was refused. `code` says why (one of the constants above); `customer_id`
    and `purpose` are set once the signature has been checked, so a refusal can still say
    whose link it was and what for (an expired one, say)."""

    def __init__(self, code: str, *, customer_id: UUID | None = None, purpose: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.customer_id = customer_id
        self.purpose = purpose


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(token: str) -> bytes:
    """The bytes of a canonical encoding, or MALFORMED. Non-canonical spellings (other
    values in the unused low bits of the last character) are refused, so each token has
    exactly one spelling."""
    if not token or len(token) > MAX_TOKEN_CHARS or not _ALPHABET.fullmatch(token):
        raise InvalidUnsubscribeToken(MALFORMED)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidUnsubscribeToken(MALFORMED) from None
    if _encode(raw) != token:
        raise InvalidUnsubscribeToken(MALFORMED)
    return raw


def _tag(secret: str, payload: bytes) -> bytes:
    """The tag under `secret` itself (a SigningKey signs with its current key)."""
    key = str.__str__(secret).encode()
    return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()[:_TAG_BYTES]


def _day_number(moment: datetime) -> int:
    return (moment.astimezone(UTC).date() - _EPOCH).days


def unsubscribe_token(*, secret: str, customer_id: UUID, purpose: str, issued_at: datetime) -> str:
    """A token that withdraws `purpose` for the customer, carrying the (UTC) day it was
    issued. The purpose is not checked against the registry here: reading is what decides,
    so a purpose dropped from the registry later stops working."""
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError("a purpose is 1 to 32 characters of a-z, 0-9, '_' and '.'")
    payload = (
        bytes([VERSION])
        + customer_id.bytes
        + _DAY.pack(_day_number(issued_at))
        + purpose.encode("ascii")
    )
    return _encode(payload + _tag(secret, payload))


def _check_signature(secret: str, raw: bytes) -> bytes:
    """The payload of a token whose tag is ours under the current key or one of the
    previous keys `secret` carries (a link mailed before a key rotation), compared in
    constant time with every key."""
    if len(raw) <= _HEADER + _TAG_BYTES or raw[0] != VERSION:
        raise InvalidUnsubscribeToken(MALFORMED)
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    matches = [hmac.compare_digest(tag, _tag(key, payload)) for key in verifying_keys(secret)]
    if not any(matches):
        raise InvalidUnsubscribeToken(TAMPERED)
    return payload


def read_unsubscribe_token(
    *, secret: str, token: str, now: datetime, max_age_days: int
) -> tuple[UUID, str]:
    """(customer id, purpose) of a token we issued at most `max_age_days` days ago (whole
    UTC days) for a purpose that rests on consent; else InvalidUnsubscribeToken with
    MALFORMED, TAMPERED, EXPIRED or UNKNOWN_PURPOSE. The signature is checked before any
    field is read."""
    payload = _check_signature(secret, _decode(token))
    customer_id = UUID(bytes=payload[1:17])
    (day,) = _DAY.unpack(payload[17:_HEADER])
    purpose = payload[_HEADER:].decode("ascii", errors="replace")
    if purpose not in CONSENT_PURPOSES:
        raise InvalidUnsubscribeToken(UNKNOWN_PURPOSE, customer_id=customer_id, purpose=purpose)
    if _day_number(now) - day > max_age_days:
        raise InvalidUnsubscribeToken(EXPIRED, customer_id=customer_id, purpose=purpose)
    return customer_id, purpose


def unsubscribe_url(*, public_url: str, token: str) -> str:
    """The link for `List-Unsubscribe` and the visible footer: `{public_url}/unsubscribe/
    {token}` (the token is URL-safe as it is)."""
    if not _ALPHABET.fullmatch(token):
        raise ValueError("not an unsubscribe token")
    return f"{public_url.rstrip('/')}/unsubscribe/{token}"
