"""The `custos` command (also `python -m api`)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from pydantic import ValidationError

from api.db import (
    DatabaseNotMigrated,
    close_db,
    ensure_migrated,
    init_db,
    migrate,
    unavailable_reason,
)
from api.errors import InputInvalid
from api.services import Services, build_services
from api.settings import Settings, get_settings
from authz import policy_cases
from authz.audit import VerifyResult
from authz.enforcer import EnforcementDisabled
from authz.registry import Role


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(str(e["msg"]) for e in exc.errors())
        raise SystemExit(f"custos: invalid settings: {messages}") from None


async def _with_db(settings: Settings, work: Callable[[Services], Awaitable[int]]) -> int:
    """Run `work` connected; a database that cannot be opened, reached or written ends the
    command (in `main`) with one line, whatever the step that found it."""
    services = build_services(settings)
    try:
        await init_db(settings.database_url)
        return await work(services)
    finally:
        try:
            await close_db()
        except Exception as exc:  # closing what never opened must not hide the first error
            if unavailable_reason(exc) is None:
                raise
        services.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()

    async def work(_: Services) -> int:
        applied = await migrate(settings.database_url)
        print(
            f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
        )
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()

    async def check(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        await services.load_authorizer()
        return 0

    try:
        asyncio.run(_with_db(settings, check))
    except (DatabaseNotMigrated, EnforcementDisabled) as exc:
        print(f"custos: refusing to start: {exc}", file=sys.stderr)
        return 2
    print(f"Custos ({settings.env}) on http://{args.host}:{args.port}/graphql")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=args.proxy_headers,
        log_level=args.log_level,
        server_header=False,  # no banner naming the server and its version
    )
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from api.demo import seed_demo

    settings = _settings()
    if settings.production:
        print("custos: seed-demo is for development only", file=sys.stderr)
        return 2

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        for line in await seed_demo(services=services):
            print(line)
        return 0

    return asyncio.run(_with_db(settings, work))


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("custos: the passwords differ")
    return first


def cmd_create_employee(args: argparse.Namespace) -> int:
    from api.staff.service import create_employee

    settings = _settings()
    password = _read_password()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        try:
            employee = await create_employee(
                services=services,
                email=args.email,
                name=args.name,
                roles=args.role,
                password=password,
            )
        except InputInvalid as exc:
            for p in exc.problems:
                print(f"custos: {p.field}: {p.message}", file=sys.stderr)
            return 2
        print(f"created employee {employee.id} with role(s) {', '.join(sorted(set(args.role)))}")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_deactivate_employee(args: argparse.Namespace) -> int:
    from api.staff.service import deactivate_employee
    from models import Employee

    settings = _settings()

    async def work(services: Services) -> int:
        employee = await Employee.get_or_none(email=args.email.strip().lower())
        if employee is None:
            print("custos: no such employee", file=sys.stderr)
            return 2
        _, revoked = await deactivate_employee(services=services, employee_id=employee.id)
        print(f"deactivated employee {employee.id}; {revoked} session(s) revoked")
        return 0

    return asyncio.run(_with_db(settings, work))


def _report_chain(name: str, result: VerifyResult) -> int:
    if result.ok:
        print(f"{name} ok: {result.checked} row(s) verified")
        return 0
    print(
        f"{name} BROKEN at row {result.first_broken_id} ({result.problem}); "
        f"{result.checked} row(s) before it are intact",
        file=sys.stderr,
    )
    return 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from authz.audit import verify

    settings = _settings()

    async def work(_: Services) -> int:
        return _report_chain("audit log", await verify())

    return asyncio.run(_with_db(settings, work))


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _write_rows(rows: AsyncIterator[dict[str, object]], *, fmt: str) -> int:
    """Rows to stdout as JSON Lines or CSV (a header first); the count to stderr."""
    count = 0
    writer = csv.writer(sys.stdout) if fmt == "csv" else None
    async for row in rows:
        if writer is not None:
            if count == 0:
                writer.writerow(row.keys())
            writer.writerow(row.values())
        else:
            sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
        count += 1
    print(f"exported {count} row(s)", file=sys.stderr)
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from authz.audit import export_rows

    settings = _settings()

    async def work(_: Services) -> int:
        return await _write_rows(export_rows(since=args.since, until=args.until), fmt=args.format)

    return asyncio.run(_with_db(settings, work))


def cmd_disclosures_export(args: argparse.Namespace) -> int:
    """The disclosure ledger in chain order, without legal's notes (auditors)."""
    from api.sharing.ledger import LedgerFilter, export_rows

    settings = _settings()
    where = LedgerFilter(customer_id=args.customer, since=args.since, until=args.until)

    async def work(_: Services) -> int:
        await ensure_migrated(settings.database_url)
        return await _write_rows(export_rows(where=where), fmt=args.format)

    return asyncio.run(_with_db(settings, work))


def cmd_disclosures_verify(args: argparse.Namespace) -> int:
    from api.sharing.ledger import verify

    settings = _settings()

    async def work(_: Services) -> int:
        await ensure_migrated(settings.database_url)
        return _report_chain("disclosure ledger", await verify())

    return asyncio.run(_with_db(settings, work))


def cmd_processing_record(args: argparse.Namespace) -> int:
    """The Article 30 record of processing activities as JSON."""
    from api.register.record import processing_record

    settings = _settings()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        await services.load_authorizer()
        record = await processing_record(services=services)
        sys.stdout.write(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_policy_send_notices(args: argparse.Namespace) -> int:
    from api.policy.notices import queue_policy_notices

    settings = _settings()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        queued = await queue_policy_notices(services=services)
        print(f"queued {queued} policy notice(s)")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_policy_test(args: argparse.Namespace) -> int:
    """Run policy test cases against the database policy or, with --policy, a candidate
    policy file (no database needed: an operator checks a change before proposing it)."""
    try:
        cases = policy_cases.load_cases(
            Path(args.file) if args.file else policy_cases.default_cases()
        )
        if args.policy:
            enforcer = policy_cases.enforcer_from_csv(Path(args.policy))
            return _report_cases(policy_cases.run_cases(cases, enforcer))
    except policy_cases.MalformedFile as exc:
        print(f"custos: {exc}", file=sys.stderr)
        return 2
    settings = _settings()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        authorizer = await services.load_authorizer()
        return _report_cases(policy_cases.run_cases(cases, authorizer.enforcer))

    return asyncio.run(_with_db(settings, work))


def cmd_policy_what_if(args: argparse.Namespace) -> int:
    """Replay the decision log against a candidate policy file (api/access/what_if_cli.py)."""
    from api.access import what_if_cli

    settings = _settings()
    days = args.days or settings.policy_what_if_days

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        return await what_if_cli.run(services, path=Path(args.file), days=days, json_out=args.json)

    return asyncio.run(_with_db(settings, work))


def _report_cases(report: policy_cases.Report) -> int:
    for failure in report.failures:
        print(f"FAIL {failure.describe()}")
    print(report.summary)
    return 1 if report.failures else 0


def cmd_rights_overdue(args: argparse.Namespace) -> int:
    """Received, unanswered rights requests past their due date (ids and dates only)."""
    from api.rights.lifecycle import overdue

    settings = _settings()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        now = services.clock.now()
        late = await overdue(now=now)
        for r in late:
            days = (now - r.due_at).days if r.due_at else 0
            print(f"{r.id}\t{r.kind}\t{r.status}\tdue {r.due_at:%Y-%m-%d}\t{days} day(s) late")
        print(f"{len(late)} overdue request(s)", file=sys.stderr)
        return 1 if late and args.fail else 0

    return asyncio.run(_with_db(settings, work))


def cmd_rights_intake(args: argparse.Namespace) -> int:
    """Handle the requests by email address waiting in the intake queue, until none is due
    (what every server's intake loop does; for deployments running no server loop)."""
    from api.rights.intake import handle_deferred

    settings = _settings()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        total = 0
        while handled := await handle_deferred(services=services):
            total += handled
        print(f"handled {total} request(s) by email address")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_mail_send_pending(args: argparse.Namespace) -> int:
    """Queue what campaigns still owe, then deliver every message due, until none is."""
    from api.mail.sender import deliver_pending
    from api.marketing.campaigns import queue_campaigns

    settings = _settings()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        await services.load_authorizer()
        await queue_campaigns(services=services)
        total = 0
        while delivered := await deliver_pending(
            backend=services.mail, settings=settings, clock=services.clock
        ):
            total += delivered
        close_mail = getattr(services.mail, "close", None)
        if close_mail is not None:
            await close_mail()
        print(f"delivered {total} message(s)")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_retention_run(args: argparse.Namespace) -> int:
    """Purge what the retention rules say has been kept long enough (or, with --dry-run,
    say what would go): one line per target, counts only."""
    from api.retention.purge import run_retention

    settings = _settings()

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        summaries = await run_retention(services=services, dry_run=args.dry_run, batch=args.batch)
        if not summaries and not args.dry_run:
            print("another retention run is in progress; nothing done", file=sys.stderr)
        for summary in summaries:
            print(summary.line)
            for customer_id in summary.listed:
                print(f"  {customer_id}")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_retention_rules(args: argparse.Namespace) -> int:
    from api.retention.rules import list_rules

    settings = _settings()

    async def work(_: Services) -> int:
        await ensure_migrated(settings.database_url)
        for rule in await list_rules():
            who = f"set by {rule.updated_by}" if rule.updated_by else "default"
            when = f"{rule.updated_at:%Y-%m-%d}"
            print(f"{rule.category} after {rule.anchor}: {rule.period} ({who}, {when})")
        return 0

    return asyncio.run(_with_db(settings, work))


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def cmd_export_schema(args: argparse.Namespace) -> int:
    from api.schema import schema_sdl

    Path(args.output).write_text(schema_sdl(), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="custos", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-For")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("seed-demo", help="add demo customers and employees (development)").set_defaults(
        func=cmd_seed_demo
    )

    create = sub.add_parser(
        "create-employee", help="create an employee; the password is read from stdin or a prompt"
    )
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument(
        "--role",
        required=True,
        action="append",
        choices=[r.value for r in Role],
        help="repeat for several roles",
    )
    create.set_defaults(func=cmd_create_employee)

    deactivate = sub.add_parser("deactivate-employee", help="deactivate and sign out an employee")
    deactivate.add_argument("--email", required=True)
    deactivate.set_defaults(func=cmd_deactivate_employee)

    audit = sub.add_parser("audit", help="the decision log").add_subparsers(
        dest="audit_command", required=True
    )
    audit.add_parser("verify", help="walk the hash chain; exit 1 naming the first broken row")
    audit.choices["verify"].set_defaults(func=cmd_audit_verify)
    audit_export = audit.add_parser("export", help="write the log as JSON Lines or CSV to stdout")
    audit_export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    audit_export.add_argument("--since", type=_when, help="ISO time, inclusive (UTC if no zone)")
    audit_export.add_argument("--until", type=_when, help="ISO time, exclusive (UTC if no zone)")
    audit_export.set_defaults(func=cmd_audit_export)

    policy = sub.add_parser(
        "policy", help="privacy policy versions; access-policy test cases and what-ifs"
    ).add_subparsers(dest="policy_command", required=True)
    policy.add_parser(
        "send-notices",
        help="queue the notice emails of material policy changes, until none is left",
    ).set_defaults(func=cmd_policy_send_notices)
    policy_test = policy.add_parser(
        "test", help="run policy test cases; exit 1 when one fails, 2 when a file does not parse"
    )
    policy_test.add_argument("file", nargs="?", help="a case file (default: the packaged cases)")
    policy_test.add_argument(
        "--policy", metavar="POLICY_CSV", help="a policy file to test instead of the database's"
    )
    policy_test.set_defaults(func=cmd_policy_test)
    what_if = policy.add_parser(
        "what-if",
        help="replay the decision log against a candidate policy file: how many decisions "
        "would flip; exit 1 when it would be refused, 2 when it does not parse",
    )
    what_if.add_argument("file", help="a policy file in the form of authz/policy.csv")
    what_if.add_argument(
        "--days", type=_positive, help="days of the log to replay (CUSTOS_POLICY_WHAT_IF_DAYS)"
    )
    what_if.add_argument("--json", action="store_true", help="print the counts as JSON")
    what_if.set_defaults(func=cmd_policy_what_if)

    rights = sub.add_parser("rights", help="data-subject rights requests").add_subparsers(
        dest="rights_command", required=True
    )
    overdue = rights.add_parser("overdue", help="list requests past their due date")
    overdue.add_argument("--fail", action="store_true", help="exit 1 when any is overdue")
    overdue.set_defaults(func=cmd_rights_overdue)
    rights.add_parser(
        "intake", help="handle the requests by email address waiting in the queue now"
    ).set_defaults(func=cmd_rights_intake)

    mail = sub.add_parser("mail", help="the outbox").add_subparsers(
        dest="mail_command", required=True
    )
    mail.add_parser(
        "send-pending", help="queue owed campaign batches and deliver every message now due"
    ).set_defaults(func=cmd_mail_send_pending)
    from api.mail.cli import add_commands as add_mail_commands

    add_mail_commands(mail)  # status, requeue, purge-dead

    retention = sub.add_parser("retention", help="retention rules and purges").add_subparsers(
        dest="retention_command", required=True
    )
    purge = retention.add_parser("run", help="purge what the retention rules say has expired")
    purge.add_argument("--dry-run", action="store_true", help="print what would go; change nothing")
    purge.add_argument(
        "--batch", type=_positive, help="rows per transaction (CUSTOS_RETENTION_BATCH)"
    )
    purge.set_defaults(func=cmd_retention_run)
    retention.add_parser("rules", help="list the retention rules").set_defaults(
        func=cmd_retention_rules
    )

    ledger = sub.add_parser("disclosures", help="the disclosure ledger").add_subparsers(
        dest="disclosures_command", required=True
    )
    ledger.add_parser(
        "verify", help="walk the ledger's hash chain; exit 1 naming the first broken row"
    ).set_defaults(func=cmd_disclosures_verify)
    ledger_export = ledger.add_parser(
        "export", help="write the ledger (without legal's notes) as JSON Lines or CSV"
    )
    ledger_export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    ledger_export.add_argument("--customer", type=UUID, help="one customer's disclosures")
    ledger_export.add_argument("--since", type=_when, help="ISO time, inclusive (UTC if no zone)")
    ledger_export.add_argument("--until", type=_when, help="ISO time, exclusive (UTC if no zone)")
    ledger_export.set_defaults(func=cmd_disclosures_export)

    sub.add_parser(
        "processing-record", help="write the Article 30 record of processing as JSON"
    ).set_defaults(func=cmd_processing_record)

    export = sub.add_parser("export-schema", help="write the GraphQL schema (SDL)")
    export.add_argument("--output", default="schema.graphql")
    export.set_defaults(func=cmd_export_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except DatabaseNotMigrated as exc:
        print(f"custos: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        print(f"custos: database unavailable: {reason}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return result


EXIT_UNAVAILABLE = 3
"""The exit status of a command that found the database unavailable (cannot be opened,
reached or written): the sysexits tradition would say 69; 2 is for usage and state."""
