"""A free TCP port on 127.0.0.1 for a server a test starts.

A port the kernel picks (a bind to port 0) comes from its ephemeral range, the range every
outgoing connection of every process takes its own end from. A server started on it a
moment later may then find it taken by someone's connection ("address already in use":
seen in CI, with the SQLite and PostgreSQL legs running side by side, each opening
connections by the thousand). So the port is picked at random below that range, where
only servers listen, and tried until a bind succeeds; the system's random source keeps
the two legs (whose `random` module a plugin seeds alike) from picking the same ones."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000
ROOM = 1_000  # ports below the range needed to pick there at all
TRIES = 200
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default when unknown)."""
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A port below the ephemeral range that nothing is bound to just now; the kernel's
    own pick only if the range leaves no room below it."""
    low = ephemeral_low()
    if low - LOWEST >= ROOM:
        pick = random.SystemRandom()
        for _ in range(TRIES):
            port = pick.randrange(LOWEST, low)
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        chosen: int = probe.getsockname()[1]
        return chosen
