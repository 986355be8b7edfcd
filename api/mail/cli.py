"""`custos mail status | requeue | purge-dead`: operating the outbox (counts only: these
commands never print an address or a message's content)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from api.clock import SystemClock


def add_commands(mail: Any) -> None:
    """Register the subcommands on `custos mail`'s subparsers."""
    mail.add_parser(
        "status", help="count the outbox's messages by state and kind (no addresses)"
    ).set_defaults(func=cmd_status)
    requeue = mail.add_parser("requeue", help="send dead messages again, with a fresh retry budget")
    purge = mail.add_parser("purge-dead", help="erase dead messages' content and address")
    for parser in (requeue, purge):
        parser.add_argument("--kind", help="only messages of this kind (e.g. campaign)")
        parser.add_argument("--id", type=int, help="only the message with this id")
    requeue.set_defaults(func=cmd_requeue)
    purge.set_defaults(func=cmd_purge_dead)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _run(work: Any) -> int:
    from api.cli import _settings, _with_db
    from api.db import ensure_migrated

    settings = _settings()

    async def checked(services: Any) -> int:
        await ensure_migrated(settings.database_url)
        result: int = await work()
        return result

    return asyncio.run(_with_db(settings, checked))


def cmd_status(args: argparse.Namespace) -> int:
    from api.mail.outbox import counts_by_state

    async def work() -> int:
        counts = await counts_by_state()
        if not counts:
            _say("the outbox is empty")
            return 0
        width = max(len(kind) for _, kind in counts)
        _say(f"{'state':<10} {'kind':<{width}} {'count':>8}")
        order = ("queued", "failed", "dead", "delivered", "expired", "purged")
        for (state, kind), n in sorted(
            counts.items(),
            key=lambda item: (order.index(item[0][0]) if item[0][0] in order else 99, item[0]),
        ):
            _say(f"{state:<10} {kind:<{width}} {n:>8}")
        totals = {s: sum(n for (state, _), n in counts.items() if state == s) for s in order}
        _say("total: " + ", ".join(f"{s} {totals[s]}" for s in order))
        if totals["dead"]:
            _say("dead messages keep their content: custos mail requeue sends them again")
        return 0

    return _run(work)


def cmd_requeue(args: argparse.Namespace) -> int:
    from api.mail.outbox import requeue_dead

    async def work() -> int:
        n = await requeue_dead(clock=SystemClock(), kind=args.kind, row_id=args.id)
        _say(f"requeued {n} dead message(s)")
        return 0

    return _run(work)


def cmd_purge_dead(args: argparse.Namespace) -> int:
    from api.mail.outbox import purge_dead

    async def work() -> int:
        n = await purge_dead(kind=args.kind, row_id=args.id)
        _say(f"purged {n} dead message(s)")
        return 0

    return _run(work)
