"""Password policy and argon2id hashing off the event loop (docs/ARCHITECTURE.md: security
floor)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import math
import os
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from importlib import resources
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.errors import HashingBusy
from api.security.hash_slots import Kind, Place, Slots, usable_cores

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 256
HASH_THREAD_NICE = 5
"""CPU weight 335 against the event loop's 1024: on a saturated core a running hash gets a
quarter of it (so it takes at most about four times its quiet duration) and the event loop
keeps three quarters."""
# Operations that may wait for a hash worker, per worker, unless CUSTOS_HASH_QUEUE_MAX says.
QUEUE_PER_WORKER = 16
# A refusal is answered after this long: a client that ignores Retry-After and asks again at
# once (a flood) then costs the event loop two requests a second per connection, not
# hundreds, which would stretch every transaction and so stall every read.
REFUSAL_DELAY_SECONDS = 0.5


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 19,000+ most common passwords (Django's list, from Royce Williams' corpus)."""
    data = resources.files("api.security").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def normalise(password: str) -> str:
    """NFKC, as NIST SP 800-63B advises; never truncated, never case-folded."""
    return unicodedata.normalize("NFKC", password)


def password_problem(password: str) -> tuple[str, str] | None:
    """(code, message) when the password is unacceptable, else None."""
    length = len(normalise(password))
    if length < MIN_LENGTH:
        return "WEAK_PASSWORD", f"Use at least {MIN_LENGTH} characters."
    if length > MAX_LENGTH:
        return "VALIDATION", f"Use at most {MAX_LENGTH} characters."
    if password.strip().lower() in common_passwords():
        return "WEAK_PASSWORD", "This password is too common; choose another."
    return None


def _lower_priority() -> None:
    """Hash threads run at nice HASH_THREAD_NICE (Linux per-thread priority), so that on a
    saturated core a hash gets a bounded share of it, neither all nor nothing (DECISIONS.md,
    "Password hashing")."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: plain priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICE)


_current_place: ContextVar[Place | None] = ContextVar("hash_place", default=None)


class PasswordService:
    """argon2id hashes, computed in a dedicated thread pool (argon2 releases the GIL), one
    thread per usable core (`workers` says otherwise), checks before new hashes
    (api/security/hash_slots.py).

    The queue in front of the threads is bounded, separately for password checks and for
    new hashes (issue 15, point 6): an operation is admitted while fewer than `queue_max`
    admitted ones of its kind would wait, and while it would be done (those ahead of it,
    over the threads, and then itself, at one hash's recent duration each) within
    `max_wait_seconds`. Otherwise it is refused with HashingBusy (RATE_LIMITED, with
    Retry-After) after REFUSAL_DELAY_SECONDS, instead of waiting many seconds. An operation
    is always admitted when a thread is free for it, so the recent duration, which grows
    while the CPU is saturated, is measured again. The estimate lags when the CPU suddenly
    gets busy; the wait for a thread does not: an admitted operation that finds none within
    `max_wait_seconds` is refused too (HashingBusy from `verify` or `hash`, before any
    work). A sign-in takes its place (`check_place`) before its attempt is counted, and
    undoes the count when `verify` refuses, so a refusal leaves nothing behind.
    """

    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        workers: int,
        queue_max: int = 0,
        max_wait_seconds: float = 0.0,
        refusal_delay_seconds: float = REFUSAL_DELAY_SECONDS,
    ) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._slots = Slots(workers or usable_cores())
        self._pool = ThreadPoolExecutor(
            max_workers=self._slots.count,
            thread_name_prefix="argon2",
            initializer=_lower_priority,
        )
        self._dummy_hash: str | None = None
        self._workers = self._slots.for_kind
        waiting = queue_max or QUEUE_PER_WORKER * self._slots.count
        self._limits: dict[Kind, int] = {
            kind: running + waiting for kind, running in self._workers.items()
        }
        self._admitted: dict[Kind, int] = {"check": 0, "new": 0}
        self._max_wait = max_wait_seconds
        self._refusal_delay = refusal_delay_seconds
        self._hash_seconds: float | None = None
        """One hash's recent duration in its thread (a moving average): grows when the
        CPU is saturated and hash threads get less of it."""
        self._running_since: dict[int, float] = {}
        """When each hash now running started, by thread."""

    def _wait(self, kind: Kind, ahead: int) -> float:
        """Seconds until `ahead` admitted operations of `kind` have been worked off."""
        return ahead * self._per_hash() / self._workers[kind]

    def _per_hash(self) -> float:
        """One hash's expected duration: the recent average, or longer while a hash now
        running has already taken longer (the CPU just got busy: the average lags)."""
        now = time.perf_counter()
        running = (now - since for since in list(self._running_since.values()))
        return max([self._hash_seconds or 0.0, *running])

    def admitted(self, kind: Kind) -> int:
        """Operations of `kind` admitted and not done (running or waiting)."""
        return self._admitted[kind]

    def retry_after(self, kind: Kind = "check") -> int:
        """Whole seconds until every admitted operation of `kind` should be done."""
        return max(1, math.ceil(self._wait(kind, self._admitted[kind])))

    def _full(self, kind: Kind) -> bool:
        ahead = self._admitted[kind]
        queued = ahead - self._workers[kind] + 1  # of them, waiting with this one
        done_in = self._wait(kind, queued) + self._per_hash()
        too_long = self._max_wait > 0 and queued > 0 and done_in > self._max_wait
        return ahead >= self._limits[kind] or too_long

    @contextlib.asynccontextmanager
    async def _admit(self, kind: Kind) -> AsyncIterator[None]:
        if self._full(kind):
            retry_after = self.retry_after(kind)
            await self.pause_refusal()
            raise HashingBusy(retry_after)
        self._admitted[kind] += 1

        def release() -> None:
            self._admitted[kind] -= 1

        place = Place(release)
        token = _current_place.set(place)
        try:
            yield
        finally:
            _current_place.reset(token)
            place.drop()

    async def _take_slot(self, kind: Kind) -> None:
        """A hash thread within `max_wait_seconds`, or HashingBusy: the estimate that
        admitted the operation lags when the CPU suddenly gets busy, this bound does not."""
        if self._max_wait <= 0:
            await self._slots.take(kind)
            return
        try:
            await asyncio.wait_for(self._slots.take(kind), self._max_wait)
        except TimeoutError:
            raise HashingBusy(self.retry_after(kind)) from None

    async def pause_refusal(self) -> None:
        """Wait REFUSAL_DELAY_SECONDS before answering a refused sign-in (the queue full,
        or the account or IP throttled: api/security/authn.py)."""
        await asyncio.sleep(self._refusal_delay)

    def check_place(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Admission of one password check: `verify` inside it is bounded (see the class).
        Raises HashingBusy when the queue is full (after REFUSAL_DELAY_SECONDS); enter it
        before counting the attempt, and undo the count if `verify` raises HashingBusy (no
        hash thread came in time)."""
        return self._admit("check")

    async def _run(self, kind: Kind, fn: Callable[..., T], *args: str) -> T:
        """`fn(*args)` on a hash thread once one is free for `kind`: within
        `max_wait_seconds` for an admitted operation, else HashingBusy before any work. The
        thread (and the caller's place) is held until the hash ends, even if the caller
        stops waiting."""
        loop = asyncio.get_running_loop()
        place = _current_place.get()
        if place is None:  # not admitted (the dummy hash at start-up): no bound
            await self._slots.take(kind)
        else:
            await self._take_slot(kind)
            place.hold()

        def timed() -> T:
            thread = threading.get_ident()
            start = self._running_since[thread] = time.perf_counter()
            try:
                return fn(*args)
            finally:
                del self._running_since[thread]
                self._observe(time.perf_counter() - start)

        def finished() -> None:
            self._slots.give(kind)
            if place is not None:
                place.drop()

        try:
            job: Future[T] = self._pool.submit(timed)
        except BaseException:
            finished()
            raise

        def done(_: Future[T]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
                loop.call_soon_threadsafe(finished)

        job.add_done_callback(done)
        return await asyncio.wrap_future(job)

    def _observe(self, seconds: float) -> None:
        previous = self._hash_seconds
        self._hash_seconds = seconds if previous is None else 0.5 * previous + 0.5 * seconds

    async def hash(self, password: str) -> str:
        """A new hash, on one of the workers new hashes may take (never the sign-in one).
        Raises HashingBusy, before any work, when the new hashes' queue is full."""
        async with self._admit("new"):
            return await self._run("new", self.hasher.hash, normalise(password))

    async def rehash(self, password: str) -> str | None:
        """A new hash when there is room for one, else None at once (an upgrade that can
        wait for another sign-in)."""
        if self._full("new"):
            return None
        with contextlib.suppress(HashingBusy):
            return await self.hash(password)
        return None

    async def warm_up(self) -> None:
        """Make the dummy hash before the first request needs it (not as a new hash: an
        unknown account's sign-in must not wait behind registrations either)."""
        if self._dummy_hash is None:
            dummy = normalise("dummy password for unknown accounts")
            self._dummy_hash = await self._run("check", self.hasher.hash, dummy)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant-work check: an unknown account is checked against a dummy hash. Bounded
        only inside `check_place` (as sign-in and password re-confirmation call it)."""
        if stored_hash is None:
            await self.warm_up()
            await self._run("check", self._verify_sync, str(self._dummy_hash), password)
            return False
        return await self._run("check", self._verify_sync, stored_hash, password)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, normalise(password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
