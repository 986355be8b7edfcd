"""The secret key and the keys it replaced (secret-key rotation, issue 17).

`SigningKey` is the current key as a `str`, so that everything that signs or keys a digest
with `services.secret` keeps doing so with the current key alone. It also carries the
previous keys (CUSTOS_PREVIOUS_SECRET_KEYS), which only a verifier reads, through
`verifying_keys`: a signature made before the rotation (an unsubscribe link in a mail sent
months ago) still verifies, and nothing new is ever signed with an old key."""

from __future__ import annotations

from collections.abc import Sequence


class SigningKey(str):
    """The current secret key; `previous` are the keys accepted for verifying only."""

    previous: tuple[str, ...]

    def __new__(cls, current: str, previous: Sequence[str] = ()) -> SigningKey:
        key = super().__new__(cls, current)
        key.previous = tuple(p for p in previous if p and p != current)
        return key

    def __repr__(self) -> str:  # a key never reaches a log line or a traceback's locals
        return f"SigningKey(<hidden>, {len(self.previous)} previous)"


def verifying_keys(secret: str) -> tuple[str, ...]:
    """The keys a signature may have been made with: the current one first, then the
    previous ones (none for a plain `str`)."""
    previous = secret.previous if isinstance(secret, SigningKey) else ()
    return (str.__str__(secret), *previous)
