"""The published privacy policy versions as this process knows them (policy section 7).

The rows are few and rarely change, so each process keeps a copy (`PolicyBook`), re-read
when it is older than `policy_cache_seconds` and dropped at once when this process
publishes. What is in force is always decided at the clock's `now()`: a version takes
effect exactly at its `effective_at`, whatever the age of the copy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from api.clock import Clock
from models import PrivacyPolicy

FIRST_VERSION = "1"
"""The version `custos migrate` seeds (the policy text the shop started with)."""


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One published version, detached from the database."""

    version: str
    effective_at: datetime
    published_at: datetime
    material: bool
    summary: str
    text: str
    changed_purposes: tuple[str, ...]

    @classmethod
    def from_model(cls, m: PrivacyPolicy) -> PolicyEntry:
        return cls(
            version=m.version,
            effective_at=m.effective_at,
            published_at=m.published_at,
            material=m.material,
            summary=m.summary,
            text=m.text,
            changed_purposes=tuple(m.changed_purposes or ()),
        )

    def in_effect(self, now: datetime) -> bool:
        return self.effective_at <= now


@dataclass(frozen=True, slots=True)
class Policies:
    """Every published version, oldest `effective_at` first (they strictly increase)."""

    versions: tuple[PolicyEntry, ...]

    def find(self, version: str) -> PolicyEntry | None:
        return next((v for v in self.versions if v.version == version), None)

    def in_force(self, now: datetime) -> list[PolicyEntry]:
        """The versions that have taken effect, oldest first."""
        return [v for v in self.versions if v.in_effect(now)]

    def current(self, now: datetime) -> PolicyEntry | None:
        """The version in force now: the last one to have taken effect."""
        taken = self.in_force(now)
        return taken[-1] if taken else None

    def latest_material(self, now: datetime) -> PolicyEntry | None:
        return next((v for v in reversed(self.in_force(now)) if v.material), None)

    def ask_again_since(self, now: datetime) -> dict[str, datetime]:
        """Per purpose whose scope a material version in force changed: the publication of
        the latest such version. A consent given before it is asked again."""
        since: dict[str, datetime] = {}
        for v in self.in_force(now):
            if v.material:
                for purpose in v.changed_purposes:
                    since[purpose] = v.published_at
        return since

    def defined_in(self, purpose: str, now: datetime) -> str:
        """The version defining a purpose as it stands: the latest material version in force
        that changed its scope, else the first version."""
        changed = [v for v in self.in_force(now) if v.material and purpose in v.changed_purposes]
        if changed:
            return changed[-1].version
        return self.versions[0].version if self.versions else FIRST_VERSION

    def newest_first(self) -> list[PolicyEntry]:
        return list(reversed(self.versions))


async def load_policies() -> Policies:
    """Every version, from the database (one small query)."""
    rows = await PrivacyPolicy.all().order_by("effective_at", "id")
    return Policies(tuple(PolicyEntry.from_model(r) for r in rows))


class PolicyBook:
    """This process's copy of the versions, and the clock that decides what is in force."""

    def __init__(
        self,
        *,
        clock: Clock,
        max_age_seconds: float = 5.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self._max_age = max_age_seconds
        self._timer = timer
        self._policies: Policies | None = None
        self._loaded_at = 0.0
        self._generation = 0

    def invalidate(self) -> None:
        """Forget the copy (this process published): the next read goes to the database,
        and a read already under way does not put back what it found."""
        self._policies = None
        self._generation += 1

    async def policies(self, *, fresh: bool = False) -> Policies:
        """The versions, re-read when the copy is older than `max_age_seconds` (how long
        another process's publication may take to be seen here) or `fresh` is asked."""
        now = self._timer()
        cached = self._policies
        if cached is None or fresh or now - self._loaded_at >= self._max_age:
            generation = self._generation
            cached = await load_policies()
            if generation == self._generation:
                self._policies, self._loaded_at = cached, now
        return cached

    async def current(self) -> PolicyEntry | None:
        return (await self.policies()).current(self.clock.now())

    async def version_in_force(self) -> str | None:
        """The version a record made now is made under (None only before the first one)."""
        current = await self.current()
        return current.version if current else None

    async def ask_again_since(self) -> dict[str, datetime]:
        return (await self.policies()).ask_again_since(self.clock.now())
