"""A token bucket per visitor, in this process's memory.

Beacons are cheap and frequent: a database round trip each to count them would cost more
than the beacon. Each process keeps its own buckets (with several processes behind a
balancer a visitor gets at most that many times the rate). The table is bounded: past its
size the least recently seen key is dropped, so a flood of new keys cannot grow it."""

from __future__ import annotations

import math

from api.clock import Clock

_MAX_KEYS = 100_000


class BeaconLimiter:
    def __init__(self, *, per_minute: int, clock: Clock) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, key: str, *, scale: int = 1) -> int | None:
        """Take one token for `key` (whose rate is `scale` times the visitor's): None when
        allowed, else seconds until one is back."""
        now = self._clock.now().timestamp()
        capacity, rate = self._capacity * scale, self._rate * scale
        tokens, at = self._buckets.pop(key, (capacity, now))
        tokens = min(capacity, tokens + (now - at) * rate)
        if len(self._buckets) >= _MAX_KEYS:  # least recently seen first: a dict keeps order
            del self._buckets[next(iter(self._buckets))]
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
        self._buckets[key] = (tokens - 1.0, now)
        return None
