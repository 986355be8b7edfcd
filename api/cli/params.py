"""The option types of `custos` beyond click's own: a moment in time as an operator types
it (api/cli/dates.py), and a whole number of at least 1. A value that is neither is a
usage error: one line naming the option, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from api.cli.dates import parse_when

if TYPE_CHECKING:  # generic from click 8.2; the project allows 8.1
    _When = click.ParamType[datetime, Any]
    _Int = click.ParamType[int, Any]
else:
    _When = _Int = click.ParamType


class When(_When):
    """A moment (parse_when) against the current time, or `now` in tests."""

    name = "when"

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value), now=self._now())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "WHEN"


class Positive(_Int):
    """A whole number of at least 1 (rows per batch, days to replay)."""

    name = "integer"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a whole number", param, ctx)
        if number < 1:
            self.fail("must be at least 1", param, ctx)
        return number
