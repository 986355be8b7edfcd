"""What commands write: rows as JSON Lines or CSV on stdout, a progress line on stderr
(only on a terminal, so pipes and files see exactly the rows), and the quiet end of a
reader that went away (`custos audit export | head -1`)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from types import TracebackType
from typing import TextIO

import click

FORMATS = ("jsonl", "csv")


class PipeClosed(Exception):
    """The reader of stdout went away: the command ends at once, quietly, with exit 0."""


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what is still
    buffered does not fail (and print a traceback) on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def csv_value(value: object) -> str:
    """One CSV cell as a plain value: a list joined with `;`, None empty, a time in ISO
    8601, a boolean true or false (as in JSON), a mapping as compact JSON; everything else
    as its text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ";".join(csv_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return str(value)


def csv_row(values: Iterable[object]) -> list[str]:
    return [csv_value(v) for v in values]


async def write_rows(
    rows: AsyncIterator[dict[str, object]], *, fmt: str, label: str = "export"
) -> int:
    """Rows to stdout as JSON Lines or CSV (a header first); the count to stderr."""
    count = 0
    writer = csv.writer(sys.stdout) if fmt == "csv" else None
    async with Progress(label, unit="row(s)") as progress:
        async for row in rows:
            if writer is not None:
                if count == 0:
                    writer.writerow(row.keys())
                writer.writerow(csv_row(row.values()))
            else:
                sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
            count += 1
            progress.advance()
    sys.stdout.flush()  # a closed pipe is found here, before the count is reported
    click.echo(f"exported {count} row(s)", err=True)
    return 0


class Progress:
    """A counter on one line of stderr while a long job runs, redrawn at most a few times
    a second (and its elapsed time, even when nothing is counted), erased at the end.
    Only when stderr is a terminal: a log file or a test sees nothing of it."""

    def __init__(
        self,
        label: str,
        *,
        unit: str = "",
        stream: TextIO | None = None,
        interval: float = 0.25,
    ) -> None:
        self.label, self.unit, self.count = label, unit, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream)
        self._interval = interval
        self._started = self._drawn = time.monotonic()
        self._ticker: asyncio.Task[None] | None = None

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and time.monotonic() - self._drawn >= self._interval:
            self.draw()

    def line(self) -> str:
        elapsed = int(time.monotonic() - self._started)
        counted = f" {self.count} {self.unit}" if self.unit else ""
        return f"{self.label}:{counted} ({elapsed} s)"

    def draw(self) -> None:
        self._drawn = time.monotonic()
        self.stream.write("\r\x1b[K" + self.line())
        self.stream.flush()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.draw()

    async def __aenter__(self) -> Progress:
        if self.enabled:
            self.draw()
            self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False
