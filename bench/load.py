"""A small keep-alive HTTP/1.1 load generator on asyncio streams (no wrk needed)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field

_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def post_request(
    port: int,
    body: dict[str, object],
    token: str | None = None,
    *,
    path: str = "/graphql",
    headers: dict[str, str] | None = None,
) -> bytes:
    payload = json.dumps(body).encode()
    extra = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    lines = "".join(f"{name}: {value}\r\n" for name, value in extra.items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{lines}Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def _worker(
    port: int, request: bytes, deadline: float, result: Result, errors_ok: bool
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            body = await reader.readexactly(int(match.group(1))) if match else b""
            if not head.startswith(b"HTTP/1.1 20") or (b'"errors"' in body and not errors_ok):
                result.failures += 1
            else:
                result.latencies.append(time.perf_counter() - start)
    finally:
        writer.close()


async def run(
    port: int, request: bytes, *, connections: int, seconds: float, errors_ok: bool = False
) -> Result:
    """Keep `connections` connections busy for `seconds`. A response with GraphQL errors
    is a failure unless `errors_ok` (the deny path answers FORBIDDEN errors by design)."""
    result = Result()
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_worker(port, request, deadline, result, errors_ok) for _ in range(connections))
    )
    result.seconds = time.perf_counter() - start
    return result
