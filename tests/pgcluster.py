"""Run a command against a throwaway PostgreSQL cluster.

    python tests/pgcluster.py -- pytest -q

Starts a cluster in a temporary directory (as the `postgres` user when run as root,
since PostgreSQL refuses root), listening on 127.0.0.1 and a socket in that directory,
creates a database, runs the command with TEST_DATABASE_URL set, then stops the cluster
and removes the directory, whatever the command's outcome.

With PGCLUSTER_STAT_STATEMENTS=1 in the environment the server also starts with
`shared_preload_libraries=pg_stat_statements` and the database gets the extension
(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`), so a benchmark can count the SQL
statements it causes (`python -m bench page`):

    PGCLUSTER_STAT_STATEMENTS=1 python tests/pgcluster.py -- python -m bench page

Without it (the default, what the test suite uses) neither is done."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    from tests.ports import free_port as _free_port
except ModuleNotFoundError:  # run as a script: its own directory is on the path
    from ports import free_port as _free_port  # type: ignore[no-redef]


def find_bindir() -> Path | None:
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin"):
        for found in sorted(glob.glob(pattern), reverse=True):
            if (Path(found) / "initdb").exists():
                return Path(found)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        return 0 if find_bindir() is not None else 1
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        print("usage: pgcluster.py -- COMMAND...", file=sys.stderr)
        return 2
    bindir = find_bindir()
    if bindir is None:
        print("pgcluster: PostgreSQL server binaries not found", file=sys.stderr)
        return 3
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        try:
            pwd.getpwnam(owner)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", owner], check=True)
    stat_statements = os.environ.get("PGCLUSTER_STAT_STATEMENTS", "") not in ("", "0")
    workdir = Path(tempfile.mkdtemp(prefix="custos-pg-"))
    data = workdir / "data"
    port = _free_port()
    if owner:
        shutil.chown(workdir, user=owner)
    log = workdir / "server.log"
    try:
        subprocess.run(
            _as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                owner,
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = (
            f"-k {workdir} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        if stat_statements:
            options += " -c shared_preload_libraries=pg_stat_statements"
        subprocess.run(
            _as_owner(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(log),
                    "-w",
                    "start",
                ],
                owner,
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "custos_test",
            ],
            check=True,
        )
        if stat_statements:
            subprocess.run(
                [
                    str(bindir / "psql"),
                    *("-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "custos_test"),
                    *("-q", "-v", "ON_ERROR_STOP=1"),
                    *("-c", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        env = dict(os.environ)
        env["TEST_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/custos_test"
        extra = ", pg_stat_statements" if stat_statements else ""
        print(f"pgcluster: PostgreSQL on 127.0.0.1:{port} ({bindir}{extra})", flush=True)
        return subprocess.run(argv, env=env, check=False).returncode
    finally:
        subprocess.run(
            _as_owner(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], owner
            ),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (a test run stopped at its deadline) ends the command and, through main's
    `finally`, the cluster: `pg_ctl` starts the server in a session of its own, so it would
    outlive this process."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    raise SystemExit(main(sys.argv[1:]))
