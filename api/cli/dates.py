"""Dates and times as an operator types them: `--since 2026-11-01`, `--since 7d`.

Accepted: an ISO date (midnight UTC), an ISO date and time (UTC when it has no offset),
or an amount of time before now: `30m`, `12h`, `7d`, `2w` (minutes, hours, days, weeks).
Anything else is a ValueError naming the accepted forms (api/cli/params.py makes it a
usage error: one line, exit 2, never a traceback)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

FORMS = "2026-11-01, 2026-11-01T09:30:00+01:00, or 30m, 12h, 7d, 2w before now"

_RELATIVE = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime) -> datetime:
    """The moment `text` names, timezone-aware; ValueError when it is none of FORMS."""
    value = text.strip().lower()
    if match := _RELATIVE.match(value):
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        try:
            return now - timedelta(**{unit: amount})
        except OverflowError:
            raise ValueError(f"{text!r} is too long ago") from None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date or time; use {FORMS}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
