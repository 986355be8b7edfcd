"""`custos policy send-notices | test | what-if`: privacy policy notices, and access-policy
test cases and what-ifs for reviewing a change before it is proposed."""

from __future__ import annotations

from pathlib import Path

import click

from api.cli.base import Group
from api.cli.output import Progress
from api.cli.params import Positive
from api.cli.runner import load_settings, run
from api.services import Services
from authz import policy_cases


@click.group(
    "policy",
    cls=Group,
    example="custos policy test",
    short_help="privacy policy versions; access-policy test cases and what-ifs",
)
def policy() -> None:
    """Privacy policy versions; access-policy test cases and what-ifs."""


@policy.command(
    "send-notices",
    example="custos policy send-notices",
    env=("DATABASE_URL", "CUSTOS_POLICY_NOTICE_BATCH", "CUSTOS_PUBLIC_URL"),
    short_help="queue the notice emails of material policy changes, until none is left",
)
def send_notices_command() -> int:
    """Queue, in the outbox, the notice email of every material policy change still owed
    to customers, batch by batch until none is left (`custos mail send-pending` sends them)."""
    from api.policy.notices import queue_policy_notices
    from models import PrivacyPolicy

    async def work(services: Services) -> int:
        queued = 0
        async with Progress("policy send-notices", unit="queued") as progress:
            # One batch at a time (what queue_policy_notices does unbounded), to count.
            while await PrivacyPolicy.exists(material=True, notice_done=False):
                batch = await queue_policy_notices(services=services, limit_batches=1)
                queued += batch
                progress.advance(batch)
        click.echo(f"queued {queued} policy notice(s)")
        return 0

    return run(work)


def _report_cases(report: policy_cases.Report) -> int:
    for failure in report.failures:
        click.echo(f"FAIL {failure.describe()}")
    click.echo(report.summary)
    return 1 if report.failures else 0


@policy.command(
    "test",
    example="custos policy test",
    env=("DATABASE_URL",),
    short_help="run policy test cases; exit 1 when one fails, 2 when a file does not parse",
)
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--policy",
    "policy_csv",
    metavar="POLICY_CSV",
    type=click.Path(dir_okay=False),
    help="a policy file to test instead of the database's (then no database is read)",
)
def test_command(file: str | None, policy_csv: str | None) -> int:
    """Run access-policy test cases (FILE, default the packaged cases) against the
    database's policy or, with --policy, a candidate policy file. Exit 0 when all pass,
    1 when one fails, 2 when a file does not parse."""
    try:
        cases = policy_cases.load_cases(Path(file) if file else policy_cases.default_cases())
        if policy_csv:
            enforcer = policy_cases.enforcer_from_csv(Path(policy_csv))
            return _report_cases(policy_cases.run_cases(cases, enforcer))
    except policy_cases.MalformedFile as exc:
        click.echo(f"custos: {exc}", err=True)
        return 2

    async def work(services: Services) -> int:
        authorizer = await services.load_authorizer()
        return _report_cases(policy_cases.run_cases(cases, authorizer.enforcer))

    return run(work)


@policy.command(
    "what-if",
    example="custos policy what-if authz/policy.csv --days 7",
    env=("DATABASE_URL", "CUSTOS_POLICY_WHAT_IF_DAYS"),
    short_help="replay the decision log against a candidate policy file",
)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--days",
    type=Positive(),
    help="days of the log to replay (default CUSTOS_POLICY_WHAT_IF_DAYS)",
)
@click.option("--json", "json_out", is_flag=True, help="print the counts as JSON")
def what_if_command(file: str, days: int | None, json_out: bool) -> int:
    """Replay the decision log against a candidate policy FILE (in the form of
    authz/policy.csv): how many decisions would flip. Exit 1 when the candidate would be
    refused (an admin or auditor would see a value), 2 when it does not parse."""
    from api.access import what_if_cli

    replay_days = days or load_settings().policy_what_if_days

    async def work(services: Services) -> int:
        return await what_if_cli.run(services, path=Path(file), days=replay_days, json_out=json_out)

    return run(work)
