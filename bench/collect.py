"""Beacon benchmark (issue 4): `POST /collect` requests/s with the consent check and
User-Agent parsing, against a bare endpoint that inserts the same row
(bench/bare_collect_app.py), side by side in one run. Target: at least 0.8x.

Two visitors: an anonymous one with analytics consent and a visitor id cookie (the common
case: the banner choice decides), and a signed-in customer whose consent records decide
(a session lookup and a consent query more). The rate limit is raised for the run: one
load generator is one visitor."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench.load import Result, post_request, run

UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
BEACON = {
    "page": "/rings?sort=price",
    "action": "view",
    "referrer": "https://search.example/q?rings",
    "consent": ["analytics"],
}
VISITOR = "__Host-custos_visitor=benchvisitor0123456789"  # 22 characters after the '='
ROUNDS = 4


def _merge(into: Result, part: Result) -> None:
    into.latencies += part.latencies
    into.failures += part.failures
    into.seconds += part.seconds


def _row(name: str, r: Result) -> str:
    return (
        f"  {name:<34}{r.rps:8.0f} req/s  p50 {r.percentile(0.5) * 1000:6.1f} ms  "
        f"p99 {r.percentile(0.99) * 1000:6.1f} ms  ({r.failures} failures)"
    )


def measure(
    *, server: Any, graphql: Any, port_of: Any, env: dict[str, str], args: Any, password: str
) -> None:
    env = {**env, "CUSTOS_COLLECT_PER_MINUTE": "100000000"}
    custos = [sys.executable, "-m", "api", "serve", "--log-level", "warning"]
    uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--factory"]
    on_port, bare_port = port_of(), port_of()
    bare = [*uvicorn, "bench.bare_collect_app:create", "--port", str(bare_port)]
    headers = {"User-Agent": UA, "Accept-Language": "en-GB,en;q=0.8"}
    with server([*custos, "--port", str(on_port)], on_port, env), server(bare, bare_port, env):
        login = graphql(
            on_port,
            f'mutation {{ login(email: "ada@example.com", password: "{password}") '
            "{ ... on LoginSuccess { token } } }",
        )
        token = login["data"]["login"]["token"]
        cases = {
            "bare insert": post_request(bare_port, BEACON, path="/collect", headers=headers),
            "/collect, anonymous with cookie": post_request(
                on_port, BEACON, path="/collect", headers={**headers, "Cookie": VISITOR}
            ),
            "/collect, signed-in customer": post_request(
                on_port, BEACON, token, path="/collect", headers=headers
            ),
        }
        ports = {"bare insert": bare_port}

        def load(name: str, seconds: float) -> Result:
            port = ports.get(name, on_port)
            return asyncio.run(
                run(port, cases[name], connections=args.connections, seconds=seconds)
            )

        for name in cases:
            load(name, 1.0)  # warm up
        results = {name: Result() for name in cases}
        for _ in range(ROUNDS):
            for name in cases:
                _merge(results[name], load(name, args.seconds / ROUNDS))

    base = results["bare insert"]
    print("POST /collect: consent check + User-Agent parsing against a bare insert")
    for name, result in results.items():
        print(_row(name, result))
    for name, result in results.items():
        if name != "bare insert":
            print(f"  ratio {name} / bare: {result.rps / base.rps:.2f}x (target >= 0.8x)")
