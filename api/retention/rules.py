"""Retention rules: the fixed catalogue of what the purge knows how to remove, keyed
(category, anchor), and the periods legal gives them (`retention_rule` rows).

A period is an ISO 8601 duration of years, months, weeks and days (`P13M`, `P30D`, `P2Y`,
`P1Y6M`, `P2W`); years fold into months and weeks into days. Hours and minutes are not
retention periods. `custos migrate` seeds the defaults of the catalogue; legal's changes
survive re-seeding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.exceptions import IntegrityError

from api.customers import validation as v
from api.errors import InputInvalid
from api.rights.rules import add_months
from authz.registry import Category
from models import RetentionRule

MAX_DAYS = 36_600
"""A hundred years (a month counted as 31 days): longer is not a retention period."""
_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:"
    r"(?P<weeks>[-+]?\d{1,5})W"
    r"|(?:(?P<years>[-+]?\d{1,5})Y)?(?:(?P<months>[-+]?\d{1,5})M)?(?:(?P<days>[-+]?\d{1,6})D)?"
    r")$",
    re.ASCII,
)
_TIME_PART = re.compile(r"^[-+]?P[^T]*T")


@dataclass(frozen=True, slots=True)
class Target:
    """Something the purge knows how to remove: which category, after which event."""

    category: str
    anchor: str
    description: str
    default: str | None
    """The seeded period; None for a target legal must add a rule for to run at all."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.category, self.anchor)


TARGETS: tuple[Target, ...] = (
    Target(
        Category.DEVICE_IP,
        "event_time",
        "The full IP address of a visit event (security events keep one) is removed this "
        "long after the event; the truncated network stays.",
        "P30D",
    ),
    Target(
        Category.BEHAVIOR_BROWSING,
        "event_time",
        "Visit events (page, action, referrer, browser, device and IP) are deleted this "
        "long after the visit.",
        "P13M",
    ),
    Target(
        Category.CONSENT_HISTORY,
        "account_closed",
        "The consent records and policy acceptances an erased account keeps as proof are "
        "deleted this long after the erasure.",
        "P2Y",
    ),
    Target(
        Category.RIGHTS_REQUESTS,
        "link_expired",
        "An access export never downloaded is emptied this long after its link expired.",
        "P0D",
    ),
    Target(
        Category.RIGHTS_REQUESTS,
        "request_completed",
        "Completed, refused and cancelled rights requests, with their history and exports, "
        "are deleted this long after they closed.",
        "P3Y",
    ),
    Target(
        Category.CONTACT_EMAIL,
        "last_sign_in",
        "Accounts nobody signed in to for this long (since registration when never) are "
        "counted as dormant; they are reported, not closed.",
        None,
    ),
)
"""In the order a run takes them: what only blanks columns runs before what deletes the
rows, so a dry run counts exactly what the real run then does."""
BY_KEY: dict[tuple[str, str], Target] = {t.key: t for t in TARGETS}


def known_targets() -> str:
    return ", ".join(f"{t.category} after {t.anchor}" for t in TARGETS)


def _period_problem(p: v.Problems, text: str) -> tuple[int, int] | None:
    clean = text.strip().upper()
    match = _DURATION.match(clean)
    if match is None or clean.endswith("P"):
        if _TIME_PART.match(clean):
            p.add("period", "Use years, months, weeks or days (P13M, P30D, P2Y), not hours.")
        else:
            p.add("period", "Not an ISO 8601 duration such as P13M, P30D or P2Y.")
        return None
    if "-" in clean:
        p.add("period", "A retention period cannot be negative.", "NEGATIVE_DURATION")
        return None
    parts = {k: int(val or 0) for k, val in match.groupdict().items() if k != "sign"}
    months, days = parts["years"] * 12 + parts["months"], parts["weeks"] * 7 + parts["days"]
    if months * 31 + days > MAX_DAYS:
        p.add("period", "Use at most 100 years.")
        return None
    return months, days


def parse_period(text: str) -> tuple[int, int]:
    """(months, days) of an ISO 8601 duration; InputInvalid on `period` otherwise:
    NEGATIVE_DURATION for a negative one ("-P1D", "P-1D"), VALIDATION for anything else
    that is not `PnYnMnD` or `PnW` (within 100 years)."""
    p = v.Problems()
    parsed = _period_problem(p, text)
    if parsed is None:
        raise InputInvalid(p.items)
    return parsed


def cutoff(*, now: datetime, months: int, days: int) -> datetime:
    """The moment `months` and `days` before `now`: anything anchored before it expired."""
    return add_months(now, -months) - timedelta(days=days)


def _check_target(p: v.Problems, category: str, anchor: str) -> None:
    if (category, anchor) not in BY_KEY:
        field = "anchor" if any(t.category == category for t in TARGETS) else "category"
        p.add(field, f"No such retention target; known: {known_targets()}.", "UNKNOWN_TARGET")


async def seed_default_rules(*, now: datetime) -> int:
    """Insert the catalogue's default rules that are missing; returns how many. A rule
    legal changed is left as it is."""
    existing = set(await RetentionRule.all().values_list("category", "anchor"))
    added = 0
    for target in TARGETS:
        if target.default is None or target.key in existing:
            continue
        months, days = parse_period(target.default)
        try:
            await RetentionRule.create(
                category=target.category,
                anchor=target.anchor,
                period=target.default,
                months=months,
                days=days,
                updated_by=None,
                updated_at=now,
            )
        except IntegrityError:  # another process seeded it at the same moment
            continue
        added += 1
    return added


async def set_rule(
    *, category: str, anchor: str, period: str, actor_id: UUID, now: datetime
) -> RetentionRule:
    """Give a target its period (legal): creates the rule or replaces its period.
    InputInvalid with every problem (UNKNOWN_TARGET, NEGATIVE_DURATION, VALIDATION);
    nothing is written then. Runs in the caller's transaction."""
    p = v.Problems()
    _check_target(p, category, anchor)
    parsed = _period_problem(p, period)
    if parsed is None or p.items:
        raise InputInvalid(p.items)
    months, days = parsed
    values: dict[str, Any] = {
        "period": period.strip().upper(),
        "months": months,
        "days": days,
        "updated_by": actor_id,
        "updated_at": now,
    }
    rule = await RetentionRule.filter(category=category, anchor=anchor).select_for_update().first()
    if rule is None:
        return await RetentionRule.create(category=category, anchor=anchor, **values)
    rule.update_from_dict(values)
    await rule.save(update_fields=list(values))
    return rule


async def list_rules() -> list[RetentionRule]:
    """Every rule, in the catalogue's order."""
    order = {t.key: i for i, t in enumerate(TARGETS)}
    found = await RetentionRule.all()
    return sorted(found, key=lambda r: order.get((r.category, r.anchor), len(order)))
