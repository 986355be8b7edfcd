"""`verifyAuditLog`: the whole log checked, against checkpoints an auditor pastes too."""

from __future__ import annotations

from collections.abc import Sequence

from api.errors import InvalidArgument
from authz.log_verify import (
    LogVerification,
    NoteError,
    open_held,
    published_verifiers,
    verify_log,
)

MAX_CHECKPOINTS = 16
MAX_NOTE_CHARS = 8192


async def against(notes: Sequence[str]) -> LogVerification:
    """Verify the log against the log's signed checkpoints and `notes`, each opened with
    the keys the log publishes; a note they did not sign is a `signature` finding."""
    if len(notes) > MAX_CHECKPOINTS:
        raise InvalidArgument("checkpoints", f"Give at most {MAX_CHECKPOINTS} checkpoints.")
    if any(len(note) > MAX_NOTE_CHARS for note in notes):
        raise InvalidArgument("checkpoints", "A checkpoint is a short signed note.")
    keys = await published_verifiers()
    held = []
    for n, note in enumerate(notes):
        try:
            held.append(open_held(f"checkpoint {n + 1}", note, keys))
        except NoteError as exc:
            return LogVerification(False, kind="signature", problem=f"checkpoint {n + 1}: {exc}")
    return await verify_log(held)
