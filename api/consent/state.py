"""What a consent record means now (policy sections 2 and 7): the one rule every reader
uses (`may_process`, the `consents` field, the conditions staff reads are decided on).

A grant counts only when it was given at or after the publication of the latest material
policy version in force that changed the purpose's scope; an older grant is to be asked
again. Purposes a material change left alone keep their consent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from authz.registry import CONSENT_PURPOSES
from models import ConsentRecord

_IN_ORDER = tuple(sorted(CONSENT_PURPOSES))


class ConsentState(StrEnum):
    GRANTED = "GRANTED"
    WITHDRAWN = "WITHDRAWN"
    NOT_ASKED = "NOT_ASKED"
    ASK_AGAIN = "ASK_AGAIN"


def consent_state(
    record: ConsentRecord | None, *, ask_again_since: datetime | None
) -> ConsentState:
    """The state given the latest record for a purpose, and when that purpose's scope last
    changed materially (None: never since the first policy)."""
    if record is None:
        return ConsentState.NOT_ASKED
    if not record.granted:
        return ConsentState.WITHDRAWN
    if ask_again_since is not None and record.at < ask_again_since:
        return ConsentState.ASK_AGAIN
    return ConsentState.GRANTED


def consent_states(
    latest: Mapping[str, ConsentRecord], *, ask_again_since: Mapping[str, datetime]
) -> dict[str, ConsentState]:
    """The state of every purpose that needs consent, from its latest records."""
    return {
        purpose: consent_state(latest.get(purpose), ask_again_since=ask_again_since.get(purpose))
        for purpose in _IN_ORDER
    }
