"""Who may hash a password now, and who waits (api/security/passwords.py uses it).

A hash is pure CPU work: running more hashes at once than the process has cores only shares
those cores and makes each slower. So at most one hash runs per usable core, and the rest
wait here, in an order that keeps sign-in usable: a waiting password check goes before every
waiting new hash, and new hashes never take the last free slot when there are two or more,
so a flood of registrations never stands in front of a sign-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Callable
from typing import Literal

Kind = Literal["check", "new"]
"""A password check (sign-in, re-confirmation) or a new hash (registration, a change)."""


def usable_cores() -> int:
    """The cores this process may run on (its affinity, as a container's cpuset or taskset
    sets it), not every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Slots:
    """At most `count` hashes run at once, checks first (see the module)."""

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self.for_kind: dict[Kind, int] = {"check": self.count, "new": max(1, self.count - 1)}
        """How many hashes of each kind may run at once."""
        self._running: dict[Kind, int] = {"check": 0, "new": 0}
        self._waiting: dict[Kind, deque[asyncio.Future[None]]] = {
            "check": deque(),
            "new": deque(),
        }

    def _free(self, kind: Kind) -> bool:
        if sum(self._running.values()) >= self.count:
            return False
        if kind == "new":
            return not self._waiting["check"] and self._running["new"] < self.for_kind["new"]
        return True

    async def take(self, kind: Kind) -> None:
        """Wait for a slot (in order within a kind); give it back with `give`."""
        if not self._waiting[kind] and self._free(kind):
            self._running[kind] += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[kind].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # given a slot, then cancelled
                self.give(kind)
            else:
                with contextlib.suppress(ValueError):
                    self._waiting[kind].remove(waiter)
                self._wake()
            raise

    def give(self, kind: Kind) -> None:
        self._running[kind] -= 1
        self._wake()

    def _wake(self) -> None:
        for kind in ("check", "new"):
            queue = self._waiting[kind]
            while queue:
                if queue[0].done():  # cancelled while waiting: its task removes it too
                    queue.popleft()
                elif self._free(kind):
                    self._running[kind] += 1
                    queue.popleft().set_result(None)
                else:
                    break


class Place:
    """One admitted password operation: its place is given back once the caller is done
    with it and no hash it started is still waiting or running (a cancelled request's hash
    that already runs keeps its place until it ends, so the count never undercounts)."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._holds = 1
        self._release = release

    def hold(self) -> None:
        self._holds += 1

    def drop(self) -> None:
        self._holds -= 1
        if self._holds == 0:
            self._release()
