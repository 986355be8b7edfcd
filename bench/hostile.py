"""How long the worst document of each kind takes to answer, against a trivial query.

    python -m bench hostile      (or: python -m bench.hostile)

Every document is posted through the ASGI app in this process (no network, one core), 20
times each after a warm-up, alternating kinds so that both sides see the same machine.
The refused ones must cost about what a trivial query costs: none of them may expand what
it describes. The last rows are the costliest documents still accepted (within every
limit), for comparison."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from api.app import create_app
from api.db import close_db, init_db, migrate
from api.settings import Settings

ROUNDS = 20


def fan_out(levels: int) -> str:
    """`F0` spreads `F1` twice, `F1` spreads `F2` twice...: 2**levels fields in a kilobyte."""
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    return f"{{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"


PAGE = (
    "customers(purpose: SECURITY, first: 200) { edges { node { id "
    "visits(first: 200) { edges { node { page ip browser } } } } } }"
)

DOCUMENTS = {
    "trivial { __typename }": "{ __typename }",
    "fragment fan-out, 22 levels (4M fields)": fan_out(22),
    "fragment fan-out, 60 levels (2^60 fields)": fan_out(60),
    "fragment cycle": "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
    "chain of 100 fragments": " ".join(
        ["{ ...F0 }"]
        + [f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(100)]
        + ["fragment F100 on Query { __typename }"]
    ),
    "15 aliases x 200 customers x 200 visits": "{ "
    + " ".join(f"a{i}: {PAGE}" for i in range(15))
    + " }",
    "nested 600 deep": "{ me " + "{ me " * 600 + "}" * 601,
    "2,001 tokens": "{ " + "__typename " * 1999 + "}",
    "accepted: 120 x `me { id }` (overlap rule)": "{ " + "me { id } " * 120 + "}",
    "accepted: 249 x `__typename`": "{ " + "__typename " * 249 + "}",
}


async def _measure(client: httpx.AsyncClient, document: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = await client.post("/graphql", json={"query": document})
    elapsed = time.perf_counter() - started
    errors = response.json().get("errors") or [{}]
    code = (
        errors[0].get("extensions", {}).get("code", "ok") if "errors" in response.json() else "ok"
    )
    return elapsed, str(code)


async def measure() -> None:
    database = Path(tempfile.mkdtemp(prefix="custos-hostile-")) / "bench.sqlite3"
    url = f"sqlite://{database}"
    await init_db(url)
    await migrate(url)
    settings = Settings(database_url=url, mail_poll_seconds=0)
    app = create_app(settings, manage_db=False)
    await app.state.services.load_authorizer()
    transport = httpx.ASGITransport(app=app)
    times: dict[str, list[float]] = {name: [] for name in DOCUMENTS}
    codes: dict[str, str] = {}
    async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
        for document in DOCUMENTS.values():
            await _measure(client, document)
        for _ in range(ROUNDS):
            for name, document in DOCUMENTS.items():
                elapsed, codes[name] = await _measure(client, document)
                times[name].append(elapsed)
    await close_db()
    trivial = statistics.median(times["trivial { __typename }"])
    print(f"{'document':46} {'bytes':>6} {'answer':>26} {'median':>9} {'ratio':>8}")
    for name, document in DOCUMENTS.items():
        median = statistics.median(times[name])
        print(
            f"{name:46} {len(document):6d} {codes[name]:>26} {median * 1000:7.2f}ms "
            f"{median / trivial:7.1f}x"
        )


if __name__ == "__main__":
    asyncio.run(measure())
