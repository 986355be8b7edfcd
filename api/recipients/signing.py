"""The signature on recipient notices and their acknowledgements (docs/RECIPIENTS.md).

Both directions use one scheme, with the processor's own key:

    Custos-Timestamp: <Unix seconds>
    Custos-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>." + body)>

The timestamp is inside the signature, so a captured message cannot be re-dated; a
receiver refuses one older (or newer) than its tolerance and one it has already seen.
Only the standard library: a processor can copy this module as it is."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TIMESTAMP = "Custos-Timestamp"
SIGNATURE = "Custos-Signature"
VERSION = "v1"


def new_key() -> str:
    """A fresh key: 32 random bytes, hex (64 characters)."""
    return secrets.token_hex(32)


def signature(key: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION}={mac.hexdigest()}"


def headers(key: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP: str(timestamp), SIGNATURE: signature(key, timestamp, body)}


class Refused(Exception):
    """Why a signed message is not accepted: `code` is BAD_SIGNATURE or STALE."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check(
    key: str, *, timestamp: str | None, given: str | None, body: bytes, now: float, tolerance: int
) -> int:
    """The message's timestamp, when `given` is `body`'s signature under `key` and the
    timestamp is within `tolerance` seconds of `now`; else Refused."""
    if not key or not timestamp or not given or not timestamp.isascii():
        raise Refused("BAD_SIGNATURE")
    try:
        at = int(timestamp)
    except ValueError:
        raise Refused("BAD_SIGNATURE") from None
    wanted = signature(key, at, body).encode()
    if not hmac.compare_digest(wanted, given.strip().encode("utf-8", "replace")):
        raise Refused("BAD_SIGNATURE")
    if abs(now - at) > tolerance:
        raise Refused("STALE")
    return at
