"""Random tokens, their stored hashes, and keyed digests that replace PII in lookup keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_digest(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value`, domain-separated by `purpose`."""
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
