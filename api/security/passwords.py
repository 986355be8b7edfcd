"""Password policy and argon2id hashing off the event loop (DESIGN section 7)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import resources
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 256
HASH_THREAD_NICE = 19


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


class PasswordService:
    """argon2id hashes, computed in a dedicated thread pool (argon2 releases the GIL).

    New hashes (registration, a password change) may take all workers but one: that one is
    always free for sign-in (`verify`), so a flood of registrations queues behind itself
    and never in front of a sign-in. The pool has at least two workers for this."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, workers: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        threads = max(2, workers or os.cpu_count() or 2)
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="argon2", initializer=_lower_priority
        )
        self._new_hashes = asyncio.Semaphore(threads - 1)
        self._dummy_hash: str | None = None

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        """A new hash, on one of the workers new hashes may take (never the sign-in one)."""
        async with self._new_hashes:
            return await self._run(self.hasher.hash, normalise(password))

    async def warm_up(self) -> None:
        """Make the dummy hash before the first request needs it (not as a new hash: an
        unknown account's sign-in must not wait behind registrations either)."""
        if self._dummy_hash is None:
            dummy = normalise("dummy password for unknown accounts")
            self._dummy_hash = await self._run(self.hasher.hash, dummy)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant-work check: an unknown account is checked against a dummy hash."""
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
