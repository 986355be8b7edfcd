"""The ports test servers are started on (tests/ports.py): never one the kernel may hand to
an outgoing connection meanwhile."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from tests import ports


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_a_free_port_lies_below_the_ephemeral_range_and_is_free() -> None:
    # given the kernel's ephemeral range (outgoing connections take their ports from it)
    low = ports.ephemeral_low()
    for _ in range(20):
        # when a test asks for a port
        port = ports.free_port()
        # then it is outside that range, and nothing is bound to it
        assert ports.LOWEST <= port < low
        assert _bindable(port)


def test_the_pick_does_not_follow_the_seeded_random_module() -> None:
    # given both legs of the suite seed `random` alike (pytest-randomly)
    random.seed(7)
    first = [ports.free_port() for _ in range(5)]
    random.seed(7)
    second = [ports.free_port() for _ in range(5)]
    # then they still pick different ports
    assert first != second


def test_a_port_taken_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a listener on the only port the range would leave
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        taken.listen()
        monkeypatch.setattr(ports, "LOWEST", port)
        monkeypatch.setattr(ports, "ephemeral_low", lambda: port + ports.ROOM)
        monkeypatch.setattr(random.SystemRandom, "randrange", lambda self, a, b: a)
        # when a port is asked for, then the kernel's own pick is given instead
        assert ports.free_port() != port


def test_without_room_below_the_range_the_kernel_picks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a system whose ephemeral range starts just above the lowest port used
    settings = tmp_path / "ip_local_port_range"
    settings.write_text(f"{ports.LOWEST + ports.ROOM - 1}\t60999\n")
    monkeypatch.setattr(ports, "_EPHEMERAL", settings)
    assert ports.ephemeral_low() == ports.LOWEST + ports.ROOM - 1
    # when a port is asked for, then it is the kernel's, and free
    port = ports.free_port()
    assert port >= ports.LOWEST + ports.ROOM - 1
    assert _bindable(port)


def test_an_unreadable_range_is_linux_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ports, "_EPHEMERAL", tmp_path / "missing")
    assert ports.ephemeral_low() == 32_768
