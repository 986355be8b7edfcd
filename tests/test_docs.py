"""Every shell and GraphQL example in README.md and docs/*.md runs against a real server, so
the docs stay true. One test per file; a failure names the file, the block's line and the
difference. The convention, for whoever writes docs:

```sh blocks (also bash, shell, console)
    Each line starting with `$ ` is a command, run by bash. The lines after it, up to the
    next `$ `, are its expected output (stdout and stderr together): `…` inside a line
    matches any text, and a line holding only `…` matches any number of lines. A command
    with no lines after it: its output is not checked, and it must exit 0 (with expected
    output the exit status is not checked, so a failing command may be shown). A command
    with a trailing backslash goes on on the next line. All commands of one file run in
    one bash session, in order, like a terminal: variables, functions and `cd` carry over.
    A block whose first line is `# not run: REASON` is skipped (`make run` itself, say);
    a file with more skipped blocks than run blocks fails, so skipping cannot become the
    norm. A block without any `$ ` command fails (use ```text for other text).

```graphql blocks
    A block whose first line is `# as ROLE` (`customer`: the demo customer; or an employee
    role of authz/registry.py Role: the demo employee ROLE-with-dots@staff.example.com)
    or `# anonymous` is sent to /graphql, signed in as that person (once per role and
    file), and must be followed by a ```json block holding the exact answer, where the
    string "…" stands for any non-empty string. A graphql block without such a first line
    is not run, and may only hold schema (SDL): an operation in it fails the test.

The working directory is prepared like a fresh `make run`: a migrated, `custos seed-demo`ed
SQLite database at `data/custos.sqlite3`, the repository's own files beside it (linked, so
`authz/policy.csv` reads as in a checkout), the venv's bin first on PATH, and a real
`custos serve` on a free port; `http://127.0.0.1:8000` in a command is replaced by its
address. Each file runs top to bottom against its own fresh server and database, so
examples in one file may build on each other. The examples describe `make run`, so this
test runs on SQLite, in the SQLite leg of the suite only: in the PostgreSQL leg
(TEST_DATABASE_URL set) it would repeat the same run on the same SQLite files. For the
same results on every run, the server's background mail sender and retention schedule are
off (`custos mail send-pending` and `custos retention run` do their work when a doc asks
for it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from api.demo import DEMO_PASSWORD
from authz.registry import Role
from tests.real_servers import free_port, wait_up

REPO = Path(__file__).parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
DEV_URL = "http://127.0.0.1:8000"
DEMO_CUSTOMER = "ada@example.com"
SHELLS = {"sh", "bash", "shell", "console"}
COMMAND_SECONDS = 120
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    lines: list[str]


@dataclass
class Tally:
    run: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order (fences at the start of a line)."""
    found: list[Block] = []
    current: Block | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line)
        if current is None and fence:
            current = Block(number, fence.group(1).lower(), [])
        elif current is not None and line.rstrip() == "```":
            found.append(current)
            current = None
        elif current is not None:
            current.lines.append(line)
    assert current is None, f"line {current.line}: a code block is never closed"
    return found


# Shell blocks


@dataclass
class Command:
    line: int
    text: str
    expected: list[str]


def commands(block: Block) -> list[Command]:
    """The `$ ` commands of a shell block with their expected output."""
    found: list[Command] = []
    continued = False
    for offset, line in enumerate(block.lines, start=1):
        if continued:
            found[-1].text += "\n" + line
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            found.append(Command(block.line + offset, line[2:], []))
            continued = line.endswith("\\")
        elif found:
            found[-1].expected.append(line)
    return found


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """`…` inside a line matches any text; a line holding only `…` any number of lines."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "…":
        return any(output_matches(rest, actual[n:]) for n in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(re.escape(part) for part in head.rstrip().split("…"))
    return bool(re.fullmatch(pattern, actual[0].rstrip())) and output_matches(rest, actual[1:])


class Shell:
    """One bash session: each command is sourced in it, its output kept in a file."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        self.scratch = scratch
        self.proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )

    def run(self, text: str) -> tuple[int, str]:
        script, out = self.scratch / "command.sh", self.scratch / "command.out"
        script.write_text(text + "\n", "utf-8")
        assert self.proc.stdin
        assert self.proc.stdout
        self.proc.stdin.write(f'. "{script}" > "{out}" 2>&1 < /dev/null; echo "::done $?"\n')
        self.proc.stdin.flush()
        deadline = time.monotonic() + COMMAND_SECONDS
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"bash ended: {out.read_text(errors='replace')}")
                if line.startswith("::done "):
                    return int(line.split()[1]), out.read_text("utf-8", errors="replace")
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer within {COMMAND_SECONDS} s")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_shell(block: Block, shell: Shell, url: str, name: str, tally: Tally) -> None:
    found = commands(block)
    if not found:
        tally.failures.append(f"{name}:{block.line}: a shell block without a `$ ` command")
        return
    tally.run += 1
    for command in found:
        status, output = shell.run(command.text.replace(DEV_URL, url))
        actual = output.replace(url, DEV_URL).rstrip("\n").splitlines()
        if not command.expected:
            ok, wanted = status == 0, "exit status 0"
        else:
            expected = list(command.expected)
            while expected and not expected[-1].strip():
                expected.pop()
            ok, wanted = output_matches(expected, actual), "\n".join(expected)
        if not ok:
            tally.failures.append(
                f"{name}:{command.line}: $ {command.text}\n--- expected\n{wanted}\n"
                f"--- actual (exit status {status})\n" + "\n".join(actual)
            )
            return


# GraphQL blocks


def matches(expected: Any, actual: Any) -> bool:
    """Equal, where the string "…" stands for any non-empty string."""
    if expected == "…":
        return isinstance(actual, str) and bool(actual)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


def employee_email(role: str) -> str:
    return f"{role.replace('_', '.')}@staff.example.com"


class Sessions:
    """A token per person, signed in once (per file) over the API."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def token(self, who: str) -> str | None:
        if who == "anonymous":
            return None
        if who not in self.tokens:
            if who == "customer":
                field_, success, email = "login", "LoginSuccess", DEMO_CUSTOMER
            else:
                assert who in {r.value for r in Role}, f"unknown role {who!r}"
                field_, success, email = "staffLogin", "StaffLoginSuccess", employee_email(who)
            query = (
                f"mutation($e: String!, $p: String!) {{ {field_}(email: $e, password: $p) "
                f"{{ ... on {success} {{ token }} }} }}"
            )
            body = self.client.post(
                "/graphql",
                json={"query": query, "variables": {"e": email, "p": DEMO_PASSWORD}},
            ).json()
            assert "token" in (body.get("data") or {}).get(field_, {}), (who, body)
            self.tokens[who] = body["data"][field_]["token"]
        return self.tokens[who]


WHO = re.compile(r"#\s*(?:as\s+(\w+)|(anonymous))\b")


def run_graphql(
    block: Block, answer: Block | None, sessions: Sessions | None, name: str, tally: Tally
) -> None:
    first = block.lines[0] if block.lines else ""
    who = WHO.match(first)
    source = "\n".join(block.lines)
    if not who:
        with contextlib.suppress(Exception):
            if any(isinstance(d, OperationDefinitionNode) for d in parse(source).definitions):
                tally.failures.append(
                    f"{name}:{block.line}: an operation without `# as ROLE` or `# anonymous`"
                )
        return
    tally.run += 1
    assert sessions is not None
    if answer is None or answer.lang != "json":
        tally.failures.append(f"{name}:{block.line}: no ```json answer after the operation")
        return
    try:
        expected = json.loads("\n".join(answer.lines))
    except json.JSONDecodeError as exc:
        tally.failures.append(f"{name}:{answer.line}: the answer is not JSON: {exc}")
        return
    token = sessions.token(who.group(1) or "anonymous")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    actual = sessions.client.post("/graphql", json={"query": source}, headers=headers).json()
    if not matches(expected, actual):
        tally.failures.append(
            f"{name}:{block.line}: {first}\n--- expected\n{json.dumps(expected)}\n"
            f"--- actual\n{json.dumps(actual)}"
        )


# The server and the working directory


def environment(url: str) -> dict[str, str]:
    """The test's environment without any database or Custos setting, as in a fresh
    terminal; the venv's bin first on PATH; quick password hashes (the floor)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CUSTOS_") and k not in {"DATABASE_URL", "TEST_DATABASE_URL"}
    }
    return dict(
        env,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(BIN.parent),
        CUSTOS_PUBLIC_URL=url,
        CUSTOS_MAIL_POLL_SECONDS="0",
        CUSTOS_RETENTION_INTERVAL_SECONDS="0",
        CUSTOS_ARGON2_TIME_COST="2",
        CUSTOS_ARGON2_MEMORY_KIB=str(19 * 1024),
        CUSTOS_ARGON2_PARALLELISM="1",
    )


def checkout(work: Path) -> None:
    """The repository's files (and its .venv), linked, and an empty `data/`."""
    for entry in REPO.iterdir():
        if entry.name not in {"data", ".git"} and not entry.name.endswith("cache"):
            (work / entry.name).symlink_to(entry)
    (work / "data").mkdir()


@contextlib.contextmanager
def served(tmp: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    work, scratch = tmp / "custos", tmp / "scratch"
    work.mkdir()
    scratch.mkdir()
    checkout(work)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = environment(url)
    for step in (["migrate"], ["seed-demo"]):
        done = subprocess.run(
            [str(BIN / "custos"), *step],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    log = scratch / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "custos"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_up(url, proc, log)
        yield url, scratch, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def runnable(block: Block) -> bool:
    if block.lang in SHELLS:
        return not (block.lines and block.lines[0].startswith("# not run:"))
    return block.lang == "graphql" and bool(block.lines) and bool(WHO.match(block.lines[0]))


def run_doc(path: Path, tmp: Path) -> Tally:
    name = path.relative_to(REPO).as_posix()
    found = blocks(path.read_text("utf-8"))
    tally = Tally()
    tally.skipped = sum(
        1 for b in found if b.lang in SHELLS and b.lines and b.lines[0].startswith("# not run:")
    )
    if not any(runnable(b) for b in found):
        for block in found:  # an operation without a sender still fails
            if block.lang == "graphql":
                run_graphql(block, None, None, name, tally)
        return tally
    with served(tmp) as (url, scratch, env), httpx.Client(base_url=url, timeout=60) as client:
        shell = Shell(scratch.parent / "custos", env, scratch)
        sessions = Sessions(client)
        try:
            for n, block in enumerate(found):
                if block.lang in SHELLS and runnable(block):
                    run_shell(block, shell, url, name, tally)
                elif block.lang == "graphql":
                    answer = found[n + 1] if n + 1 < len(found) else None
                    run_graphql(block, answer, sessions, name, tally)
        finally:
            shell.close()
    return tally


@pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")),
    reason="the docs describe make run on SQLite: run once, in the SQLite leg",
)
@pytest.mark.parametrize("path", DOCS, ids=[p.relative_to(REPO).as_posix() for p in DOCS])
def test_the_examples_run_as_written(path: Path, tmp_path: Path) -> None:
    tally = run_doc(path, tmp_path)
    name = path.relative_to(REPO).as_posix()
    assert not tally.failures, "\n\n".join(tally.failures)
    assert tally.skipped <= tally.run, (
        f"{name}: {tally.skipped} example block(s) skipped (`# not run`) and only "
        f"{tally.run} run: run them, or show them as ```text"
    )


# The convention itself, on small texts


def test_output_matching() -> None:
    assert output_matches(["a … c"], ["a b b c"])
    assert output_matches(["first", "…", "last"], ["first", "last"])
    assert output_matches(["first", "…", "last"], ["first", "x", "y", "last"])
    assert not output_matches(["first", "…", "last"], ["first", "x"])
    assert not output_matches(["a … c"], ["a b d"])
    assert not output_matches(["one"], ["one", "two"])


def test_blocks_and_commands_are_read_as_documented() -> None:
    text = "x\n```sh\n$ echo a \\\n  b\na b\n$ true\n```\n```graphql\n# as admin\n{ x }\n```\n"
    found = blocks(text)
    assert [(b.line, b.lang) for b in found] == [(2, "sh"), (8, "graphql")]
    (echo, true) = commands(found[0])
    assert (echo.line, echo.text, echo.expected) == (3, "echo a \\\n  b", ["a b"])
    assert (true.line, true.expected) == (6, [])
    assert matches({"a": ["…", 1]}, {"a": ["x", 1]})
    assert not matches({"a": "…"}, {"a": ""})
    assert not matches({"a": 1}, {"a": 1, "b": 2})
