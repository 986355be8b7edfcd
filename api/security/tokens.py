"""Random tokens, their stored hashes, and keyed digests that replace PII in lookup keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from uuid import UUID

from api.security.secret_keys import verifying_keys

TAG_CHARS = 40


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_digest(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value`, domain-separated by `purpose`."""
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def tagged_id(secret: str, purpose: str, value: UUID) -> str:
    """`<id>.<tag>`: a link's token that needs nothing stored, the tag a keyed digest of
    the id for `purpose` (160 bits)."""
    return f"{value}.{keyed_digest(secret, purpose, str(value))[:TAG_CHARS]}"


def id_of_tagged(secret: str, purpose: str, token: str) -> UUID | None:
    """The id of a `tagged_id` token whose tag is right under the secret key or one of the
    previous keys; None for anything else."""
    if len(token) > 36 + 1 + TAG_CHARS or not token.isascii():
        return None
    raw_id, _, tag = token.partition(".")
    try:
        value = UUID(raw_id)
    except ValueError:
        return None
    if str(value) != raw_id:
        return None
    for key in verifying_keys(secret):
        wanted = keyed_digest(key, purpose, raw_id)[:TAG_CHARS]
        if hmac.compare_digest(wanted.encode(), tag.encode()):
            return value
    return None
