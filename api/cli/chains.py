"""What `audit verify` and `disclosures verify` print: one line, ok or the first broken row."""

from __future__ import annotations

import click

from authz.audit import VerifyResult
from authz.log_verify import LogVerification


def report_chain(name: str, result: VerifyResult | LogVerification) -> int:
    if result.ok:
        click.echo(f"{name} ok: {result.checked} row(s) verified")
        return 0
    click.echo(
        f"{name} BROKEN at row {result.first_broken_id} ({result.problem}); "
        f"{result.checked} row(s) before it are intact",
        err=True,
    )
    return 1
