"""The auditor's commands: `python -m verifier witness | witness-key | check-export |
check-certificate`.

Exit statuses: 0 all is well; 2 a finding (the witness's ALARM, a failed export check);
1 nothing could be checked (bad arguments, unreachable log, unusable input). Usage errors
exit 1 too, so that 2 always means the log was caught doing something wrong."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from verifier import certificate, export_check, witness
from verifier.fetch import FetchError, check_url, get, join
from verifier.note import MAX_NOTE_BYTES, NoteError, Verifier, open_checkpoint, parse_vkey

OK, ERROR, FINDING = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ERROR, f"{self.prog}: error: {message}\n")


class _Usage(Exception):
    pass


def _out(line: str) -> None:
    sys.stdout.write(line if line.endswith("\n") else line + "\n")


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


def _keys(vkeys: Sequence[str]) -> list[Verifier]:
    keys = []
    for vkey in vkeys:
        try:
            keys.append(parse_vkey(vkey))
        except NoteError as exc:
            raise _Usage(f"bad --log-key {vkey!r}: {exc}") from None
    return keys


def _witness(args: argparse.Namespace) -> int:
    try:
        base = check_url(args.log)
    except FetchError as exc:
        raise _Usage(str(exc)) from None
    keys = _keys(args.log_key)
    signer = witness.load_signer(Path(args.key)) if args.key else None

    def fetch(path: str) -> bytes:
        return get(join(base, path), timeout=args.timeout)

    result = witness.run(fetch, keys, Path(args.state), signer)
    if result.outcome == "alarm":
        _err(f"ALARM: {result.message}")
        _out(f"evidence kept in {result.evidence}")
        return FINDING
    _out(result.message)
    if result.cosigned is not None:
        _out(result.cosigned)
    return OK


def _witness_key(args: argparse.Namespace) -> int:
    signer = witness.write_key(args.name, Path(args.out))
    _out(signer.verifier.vkey)
    return OK


def _check_export(args: argparse.Namespace) -> int:
    keys = _keys(args.log_key)
    try:
        with open(args.checkpoint, "rb") as handle:
            raw = handle.read(MAX_NOTE_BYTES + 1)
    except OSError as exc:
        raise _Usage(f"cannot read {args.checkpoint}: {exc.strerror or exc}") from None
    try:
        checkpoint, _ = open_checkpoint(raw, keys)
    except NoteError as exc:
        raise _Usage(f"the checkpoint does not open with the given keys: {exc}") from None
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        raise _Usage("--jobs is 1 to 64")
    report = export_check.check_file(Path(args.rows), checkpoint, jobs=args.jobs)
    for line in report.findings():
        _out(line)
    _out(report.summary())
    _out(
        f"checked {report.rows} rows in {report.seconds:.2f} s "
        f"({report.rows_per_second:,.0f} rows/s)"
    )
    return OK if report.ok else FINDING


def _check_certificate(args: argparse.Namespace) -> int:
    keys = _keys(args.log_key)
    try:
        with open(args.certificate, "rb") as handle:
            raw = handle.read(certificate.MAX_BYTES + 1)
    except OSError as exc:
        raise _Usage(f"cannot read {args.certificate}: {exc.strerror or exc}") from None
    try:
        checked = certificate.check(raw, keys)
    except certificate.CertificateError as exc:
        _err(f"NOT VALID: {exc}")
        return FINDING
    _out(f"certificate ok: request {checked.request}, completed {checked.completed}")
    for name, action, _ in checked.categories:
        _out(f"  {name}: {action}")
    for name, status, outcome, _ in checked.recipients:
        _out(f"  recipient {name}: {status}" + (f" ({outcome})" if outcome != "-" else ""))
    _out(f"  {len(checked.evidence)} log row(s) in the tree of {checked.tree_size}")
    return OK


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m verifier", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    w = commands.add_parser(
        "witness", help="check the log's latest checkpoint against the last accepted one"
    )
    w.add_argument("--log", required=True, help="the log's base URL")
    w.add_argument(
        "--log-key", required=True, action="append", metavar="VKEY", help="a pinned log key"
    )
    w.add_argument("--state", required=True, help="the witness's state folder")
    w.add_argument("--key", help="a witness key file (witness-key): cosign what passes")
    w.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    w.set_defaults(run=_witness)
    k = commands.add_parser("witness-key", help="make a witness key and print its vkey")
    k.add_argument("--name", required=True, help="the key's name, e.g. your domain")
    k.add_argument("--out", required=True, help="the key file to create (never overwritten)")
    k.set_defaults(run=_witness_key)
    c = commands.add_parser(
        "check-export", help="check a decision-log export against a signed checkpoint"
    )
    c.add_argument("--rows", required=True, help="the export, JSON Lines in leaf order")
    c.add_argument("--checkpoint", required=True, help="a checkpoint note of the log")
    c.add_argument("--log-key", required=True, action="append", metavar="VKEY", help="a log key")
    c.add_argument("--jobs", type=int, help="processes to hash with (default: by file size)")
    c.set_defaults(run=_check_export)
    e = commands.add_parser(
        "check-certificate", help="check a certificate of erasure against the log's keys"
    )
    e.add_argument("--certificate", required=True, help="the downloaded certificate (JSON)")
    e.add_argument("--log-key", required=True, action="append", metavar="VKEY", help="a log key")
    e.set_defaults(run=_check_certificate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except (_Usage, witness.WitnessError, export_check.ExportError) as exc:
        _err(f"error: {exc}")
        return ERROR
    except KeyboardInterrupt:
        return ERROR
    return status


if __name__ == "__main__":
    sys.exit(main())
