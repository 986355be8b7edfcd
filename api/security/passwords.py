"""Password policy and argon2id hashing off the event loop (DESIGN section 7)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import math
import os
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import Literal, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.errors import HashingBusy

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 256
HASH_THREAD_NICE = 19
# Operations that may wait for a hash worker, per worker, unless CUSTOS_HASH_QUEUE_MAX says.
QUEUE_PER_WORKER = 16
# A refusal is answered after this long: a client that ignores Retry-After and asks again at
# once (a flood) then costs the event loop two requests a second per connection, not
# hundreds, which would stretch every transaction and so stall every read.
REFUSAL_DELAY_SECONDS = 0.5


@cache
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
    """Hash threads run at a lower CPU priority (Linux per-thread nice, inherited by argon2's
    lane threads), so a flood of sign-ins cannot starve the event loop serving other requests."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: plain priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICE)


Kind = Literal["check", "new"]


class _Place:
    """One admitted password operation: its place is given back once the caller is done
    with it and no hash it started is still queued or running (a cancelled request's hash
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


_current_place: ContextVar[_Place | None] = ContextVar("hash_place", default=None)


class PasswordService:
    """argon2id hashes, computed in a dedicated thread pool (argon2 releases the GIL).

    New hashes (registration, a password change) may take all workers but one: that one is
    always free for sign-in (`verify`), so a flood of registrations queues behind itself
    and never in front of a sign-in. The pool has at least two workers for this.

    The queue in front of the workers is bounded, separately for password checks and for
    new hashes (issue 15, point 6): an operation is admitted while fewer than `queue_max`
    admitted ones of its kind would wait for a worker, and while its expected wait (those
    ahead of it times one hash's recent duration, over the workers) is at most
    `max_wait_seconds`. Otherwise it is refused with HashingBusy (RATE_LIMITED, with
    Retry-After) after REFUSAL_DELAY_SECONDS, instead of waiting many seconds. A sign-in takes its
    place (`check_place`) before its attempt is counted, so a refusal leaves nothing behind.
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
        threads = max(2, workers or os.cpu_count() or 2)
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._new_hashes = asyncio.Semaphore(threads - 1)
        self._dummy_hash: str | None = None
        self._workers: dict[Kind, int] = {"check": threads, "new": threads - 1}
        waiting = queue_max or QUEUE_PER_WORKER * threads
        self._limits: dict[Kind, int] = {
            kind: running + waiting for kind, running in self._workers.items()
        }
        self._admitted: dict[Kind, int] = {"check": 0, "new": 0}
        self._max_wait = max_wait_seconds
        self._refusal_delay = refusal_delay_seconds
        self._hash_seconds: float | None = None
        """One hash's recent duration in its thread (a moving average): grows when the
        CPU is saturated and hash threads get little of it."""

    def _wait(self, kind: Kind, ahead: int) -> float:
        """Seconds until `ahead` admitted operations of `kind` have been worked off."""
        return ahead * (self._hash_seconds or 0.0) / self._workers[kind]

    def admitted(self, kind: Kind) -> int:
        """Operations of `kind` admitted and not done (running or waiting)."""
        return self._admitted[kind]

    def retry_after(self, kind: Kind = "check") -> int:
        """Whole seconds until every admitted operation of `kind` should be done."""
        return max(1, math.ceil(self._wait(kind, self._admitted[kind])))

    def _full(self, kind: Kind) -> bool:
        ahead = self._admitted[kind]
        queued = ahead - self._workers[kind] + 1  # of them, waiting with this one
        too_long = self._max_wait > 0 and queued > 0 and self._wait(kind, queued) > self._max_wait
        return ahead >= self._limits[kind] or too_long

    @contextlib.asynccontextmanager
    async def _admit(self, kind: Kind) -> AsyncIterator[None]:
        if self._full(kind):
            retry_after = self.retry_after(kind)
            await asyncio.sleep(self._refusal_delay)
            raise HashingBusy(retry_after)
        self._admitted[kind] += 1

        def release() -> None:
            self._admitted[kind] -= 1

        place = _Place(release)
        token = _current_place.set(place)
        try:
            yield
        finally:
            _current_place.reset(token)
            place.drop()

    def check_place(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Admission of one password check: `verify` inside it is bounded (see the class).
        Raises HashingBusy when the queue is full (after REFUSAL_DELAY_SECONDS); enter it
        before counting the attempt."""
        return self._admit("check")

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        loop = asyncio.get_running_loop()
        place = _current_place.get()

        def timed() -> T:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self._observe(time.perf_counter() - start)

        job: Future[T] = self._pool.submit(timed)
        if place is not None:
            place.hold()

            def done(_: Future[T]) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits
                    loop.call_soon_threadsafe(place.drop)

            job.add_done_callback(done)
        return await asyncio.wrap_future(job)

    def _observe(self, seconds: float) -> None:
        previous = self._hash_seconds
        self._hash_seconds = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    async def hash(self, password: str) -> str:
        """A new hash, on one of the workers new hashes may take (never the sign-in one).
        Raises HashingBusy, before any work, when the new hashes' queue is full."""
        async with self._admit("new"), self._new_hashes:
            return await self._run(self.hasher.hash, normalise(password))

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
            self._dummy_hash = await self._run(self.hasher.hash, dummy)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant-work check: an unknown account is checked against a dummy hash. Bounded
        only inside `check_place` (as sign-in and password re-confirmation call it)."""
        if stored_hash is None:
            await self.warm_up()
            await self._run(self._verify_sync, str(self._dummy_hash), password)
            return False
        return await self._run(self._verify_sync, stored_hash, password)

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, normalise(password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
