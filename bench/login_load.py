"""Sign-in under load (issue 15, point 6): `python -m bench login`.

1. Login p50/p99 with the server saturated by reads (`{ me { id } }` with a bearer token on
   `--connections` connections, logins arriving at 5% of all requests, open loop) against
   the same logins on a quiet server, and their ratio. A login refused because the hashing
   queue is full (429 RATE_LIMITED with Retry-After) is counted apart, with its own latency.
   Logins take turns with three accounts, so that the per-account throttle (which counts
   attempts in flight) refuses none; a throttled one would be counted apart too.
2. Reads' p99 during a login flood (16 connections signing in as fast as answered, waiting
   the Retry-After of a refusal as clients do) against the same reads on a quiet server
   (target: within 2x), as `python -m bench light` does with a flood that does not wait.

Logins use argon2 with production parameters (the settings' defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from bench.load import Result, post_request, run

_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
_RETRY_AFTER = re.compile(rb"retry-after:\s*(\d+)", re.IGNORECASE)
LOGIN_SHARE = 0.05


@dataclass
class Logins:
    signed_in: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    """Refused because the hashing queue was full."""
    throttled: int = 0
    """Refused by the per-account throttle (attempts in flight count until they succeed)."""
    failures: int = 0
    seconds: float = 0.0

    def share_refused(self) -> float:
        answered = len(self.signed_in) + len(self.refused)
        return len(self.refused) / answered if answered else 0.0


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def _ms(values: list[float], p: float) -> str:
    return f"{_percentile(values, p) * 1000:8.1f} ms"


async def _login_worker(
    port: int,
    request: bytes,
    deadline: float,
    interval: float | None,
    result: Logins,
    offset: float = 0.0,
) -> None:
    """Sign in until `deadline`: every `interval` seconds from `offset` on (open loop, a
    late one goes at once), or back to back when None, waiting the Retry-After of a
    refusal."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter() + offset
    try:
        while time.perf_counter() < deadline:
            if interval is not None:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
                if time.perf_counter() >= deadline:
                    break
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            body = await reader.readexactly(int(match.group(1))) if match else b""
            took = time.perf_counter() - start
            if head.startswith(b"HTTP/1.1 200") and b"LoginSuccess" in body:
                result.signed_in.append(took)
            elif head.startswith(b"HTTP/1.1 429") and (wait := _RETRY_AFTER.search(head)):
                if b"busy" in body:
                    result.refused.append(took)
                else:
                    result.throttled += 1
                if interval is None:  # a client signing in honours Retry-After
                    await asyncio.sleep(min(float(wait.group(1)), deadline - time.perf_counter()))
            else:
                result.failures += 1
    finally:
        writer.close()


async def logins(
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
) -> Logins:
    """`connections` connections signing in for `seconds` (taking turns with `requests`),
    at `rate` a second in all when given (open loop, evenly spaced: the connections take
    turns, not all at once), else back to back."""
    result = Logins()
    start = time.perf_counter()
    interval = connections / rate if rate else None
    await asyncio.gather(
        *(
            _login_worker(
                port,
                requests[i % len(requests)],
                start + seconds,
                interval,
                result,
                offset=i * interval / connections if interval else 0.0,
            )
            for i in range(connections)
        )
    )
    result.seconds = time.perf_counter() - start
    return result


def measure(
    *,
    server: Callable[[list[str], int, dict[str, str]], AbstractContextManager[object]],
    graphql: Callable[[int, str], dict[str, Any]],
    port_of: Callable[[], int],
    env: dict[str, str],
    args: argparse.Namespace,
    custos: list[str],
    password: str,
) -> None:
    port = port_of()
    serve = [*custos, "serve", "--port", str(port), "--log-level", "warning"]
    seconds = args.seconds

    def login_request(email: str) -> bytes:
        query = (
            f'mutation {{ login(email: "{email}", password: "{password}") '
            "{ __typename ... on LoginSuccess { token } } }"
        )
        return post_request(port, {"query": query})

    with server(serve, port, env):
        body = graphql(port, login_request_query(password))
        token = body["data"]["login"]["token"]
        read = post_request(port, {"query": "{ me { id } }"}, token)
        # Three accounts, so that fewer than the throttle's 5 attempts of one are in flight.
        sign_in = [login_request(f"{name}@example.com") for name in ("ada", "chloe", "dara")]
        flood = [login_request("ben@example.com")]

        quiet_logins = asyncio.run(logins(port, sign_in, connections=1, seconds=seconds))
        saturated_reads = asyncio.run(
            run(port, read, connections=args.connections, seconds=seconds)
        )
        rate = saturated_reads.rps * LOGIN_SHARE / (1 - LOGIN_SHARE)

        async def saturated() -> tuple[Result, Logins]:
            return await asyncio.gather(
                run(port, read, connections=args.connections, seconds=seconds),
                # enough connections that an admitted login's wait never delays the next
                logins(
                    port, sign_in, connections=max(8, int(rate * 4)), seconds=seconds, rate=rate
                ),
            )

        reads_busy, busy_logins = asyncio.run(saturated())
        quiet_reads = asyncio.run(run(port, read, connections=8, seconds=seconds))

        async def flooded() -> tuple[Result, Logins]:
            return await asyncio.gather(
                run(port, read, connections=8, seconds=seconds),
                logins(port, flood, connections=16, seconds=seconds),
            )

        during, flood_logins = asyncio.run(flooded())

    quiet_p50 = _percentile(quiet_logins.signed_in, 0.5)
    busy_p50 = _percentile(busy_logins.signed_in, 0.5)
    quiet_p99 = _percentile(quiet_logins.signed_in, 0.99)
    busy_p99 = _percentile(busy_logins.signed_in, 0.99)
    print(
        f"login, quiet server:       p50 {_ms(quiet_logins.signed_in, 0.5)}, p99 "
        f"{_ms(quiet_logins.signed_in, 0.99)} ({len(quiet_logins.signed_in)} signed in)"
    )
    print(
        f"login, saturated by reads: p50 {_ms(busy_logins.signed_in, 0.5)}, p99 "
        f"{_ms(busy_logins.signed_in, 0.99)} ({len(busy_logins.signed_in)} signed in, "
        f"{len(busy_logins.refused)} refused RATE_LIMITED in p50 "
        f"{_ms(busy_logins.refused, 0.5).strip()}, {busy_logins.throttled} throttled, "
        f"{busy_logins.failures} failures; "
        f"{rate:.1f} logins/s against {reads_busy.rps:.0f} reads/s)"
    )
    print(
        f"  ratio saturated / quiet: p50 {busy_p50 / quiet_p50:.2f}x, "
        f"p99 {busy_p99 / quiet_p99:.2f}x"
    )
    print(f"reads p99, quiet:          {_ms(quiet_reads.latencies, 0.99)}")
    print(
        f"reads p99, login flood:    {_ms(during.latencies, 0.99)} "
        f"({len(flood_logins.signed_in) / flood_logins.seconds:.1f} logins/s signed in, "
        f"{len(flood_logins.refused) / flood_logins.seconds:.1f}/s refused RATE_LIMITED, "
        f"{flood_logins.throttled / flood_logins.seconds:.1f}/s throttled, "
        f"{flood_logins.failures} failures)"
    )
    print(
        f"  ratio flood / quiet p99: "
        f"{during.percentile(0.99) / quiet_reads.percentile(0.99):.2f}x (target <= 2x)"
    )


def login_request_query(password: str) -> str:
    return (
        f'mutation {{ login(email: "ada@example.com", password: "{password}") '
        "{ ... on LoginSuccess { token } } }"
    )
