"""The deadline of a rights request, as the law that applies sets it: rules per
jurisdiction as data, the customer's country deciding which applies, and the clock of
one request (started, paused, resumed, extended) from which its due date follows.

    due = start + answer_within            (calendar months: the same day, or the month's
        [+ extension, once]                 last when it is shorter; then days)
        + the time the clock stood paused

GDPR (Art. 12(3)): one month from receipt, extendable once by up to two months with the
reasons told to the requester; the clock stands while we wait for the requester to prove
their identity. CCPA (Cal. Code Regs. tit. 11, s. 7021): 45 days from receipt whatever the
time verification takes, extendable once by 45 days with notice. docs/API_CUSTOMERS.md
("Deadlines") states the rules and docs/DECISIONS.md ("Rights requests") each choice."""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Period:
    months: int = 0
    days: int = 0

    def after(self, moment: datetime) -> datetime:
        """`moment` plus the months (31 January + 1 month = 28 or 29 February), then the
        days."""
        return add_months(moment, self.months) + timedelta(days=self.days)

    def __str__(self) -> str:
        parts = [f"{self.months} month(s)"] if self.months else []
        parts += [f"{self.days} day(s)"] if self.days or not parts else []
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    jurisdiction: str
    law: str
    answer_within: Period
    extension_max: Period
    """The most one extension adds; extensions of whole months may add less (GDPR)."""
    extensions: int
    verification_pauses: bool
    """Whether the clock stands while the requester's identity is being verified."""

    def extension(self, months: int | None) -> Period:
        """The period an extension of `months` adds (None: the most allowed). A rule whose
        extension is counted in days takes none (its extension is fixed)."""
        if months is None:
            return self.extension_max
        if not self.extension_max.months or self.extension_max.days:
            raise ValueError(f"{self.jurisdiction} extends by {self.extension_max}")
        if not 1 <= months <= self.extension_max.months:
            raise ValueError(f"extend by 1 to {self.extension_max.months} months")
        return Period(months=months)


GDPR = DeadlineRule("GDPR", "GDPR Art. 12(3)", Period(months=1), Period(months=2), 1, True)
UK_GDPR = DeadlineRule("UK_GDPR", "UK GDPR Art. 12(3)", Period(months=1), Period(months=2), 1, True)
CCPA = DeadlineRule(
    "CCPA", "Cal. Civ. Code 1798.130(a)(2)", Period(days=45), Period(days=45), 1, False
)
RULES: Mapping[str, DeadlineRule] = {rule.jurisdiction: rule for rule in (GDPR, UK_GDPR, CCPA)}

_EEA = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO"
COUNTRIES: Mapping[str, str] = {
    **dict.fromkeys(_EEA.split(), "GDPR"),
    "GB": "UK_GDPR",
    "US": "CCPA",  # no state is recorded: California's rule for every US customer
}


def jurisdiction_for(country: str, default: str) -> str:
    """The jurisdiction of a customer living in `country` (ISO 3166-1 alpha-2)."""
    return COUNTRIES.get(country.strip().upper(), default)


# The clock's events, in the order they happened: {"at": ISO 8601, "event": one of these,
# "reason": text, "period": for `extended`, e.g. "2 month(s)"}.
STARTED, PAUSED, RESUMED, EXTENDED = "started", "paused", "resumed", "extended"


def event(
    at: datetime, kind: str, reason: str = "", period: Period | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": at.isoformat(), "event": kind, "reason": reason}
    if period is not None:
        entry["months"], entry["days"] = period.months, period.days
    return entry


def due(rule: DeadlineRule, clock: Sequence[Mapping[str, Any]]) -> datetime | None:
    """The due date the clock's events give; None before it starts or while it stands."""
    start: datetime | None = None
    paused_since: datetime | None = None
    stood = timedelta()
    extended = Period()
    for entry in clock:
        at = datetime.fromisoformat(str(entry["at"]))
        kind = entry["event"]
        if kind == STARTED:
            start = at
        elif kind == PAUSED and paused_since is None:
            paused_since = at
        elif kind == RESUMED and paused_since is not None:
            stood += at - paused_since
            paused_since = None
        elif kind == EXTENDED:
            extended = Period(int(entry.get("months", 0)), int(entry.get("days", 0)))
    if start is None or paused_since is not None:
        return None
    return extended.after(rule.answer_within.after(start)) + stood


def paused(clock: Sequence[Mapping[str, Any]]) -> bool:
    state = [e["event"] for e in clock if e["event"] in (PAUSED, RESUMED)]
    return bool(state) and state[-1] == PAUSED


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` calendar months later; the last day of the month when that
    month is shorter (31 January + 1 month = 28 or 29 February)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
