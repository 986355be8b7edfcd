"""Real servers and a PostgreSQL cluster of a test's own: `custos serve` processes on a
database URL (the fault tests, the policy propagation tests), and a cluster that a test may
stop and start while servers use it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cli_helpers import REPO
from tests.conftest import TEST_SECRET
from tests.pgcluster import _as_owner, find_bindir
from tests.ports import free_port


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        **extra,
        DATABASE_URL=database_url,
        CUSTOS_ENV="development",
        CUSTOS_SECRET_KEY=TEST_SECRET,
        CUSTOS_MAIL_POLL_SECONDS="0",
        CUSTOS_RETENTION_INTERVAL_SECONDS="0",
        CUSTOS_ARGON2_TIME_COST="2",
        CUSTOS_ARGON2_MEMORY_KIB=str(19 * 1024),
        CUSTOS_ARGON2_PARALLELISM="1",
    )


def migrate(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        cwd=REPO,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Server:
    url: str
    log: Path
    pid: int = 0


@contextlib.contextmanager
def servers(
    database_url: str, count: int, log_dir: Path | None = None, **env: str
) -> Iterator[list[Server]]:
    """`count` real `custos serve` processes on the database, with `env` added to their
    environment; their output in log_dir (or nowhere). Always terminated."""
    procs: list[subprocess.Popen[bytes]] = []
    started: list[Server] = []
    try:
        for n in range(count):
            port = free_port()
            log = log_dir / f"server-{n}.log" if log_dir else Path(os.devnull)
            with log.open("wb") as out:
                cmd = [sys.executable, "-m", "api", "serve", "--port", str(port)]
                procs.append(
                    subprocess.Popen(
                        [*cmd, "--log-level", "warning"],
                        cwd=REPO,
                        env=server_env(database_url, **env),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            started.append(Server(f"http://127.0.0.1:{port}", log, procs[-1].pid))
        for server, proc in zip(started, procs, strict=True):
            wait_up(server.url, proc, server.log)
        yield started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_up(url: str, proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Until the server answers /healthz; fails with its output if it exits or is slow."""

    def output() -> str:
        return log.read_text(errors="replace") if log and log != Path(os.devnull) else ""

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited: {output()}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the server did not start: {output()}")


class Cluster:
    """A throwaway PostgreSQL cluster (as tests/pgcluster.py starts one) that can be
    stopped and started again on the same port."""

    def __init__(self) -> None:
        bindir = find_bindir()
        assert bindir is not None, "PostgreSQL server binaries not found"
        self.bindir = bindir
        self.owner = "postgres" if os.geteuid() == 0 else None
        self.workdir = Path(tempfile.mkdtemp(prefix="custos-pgfault-"))
        if self.owner:
            shutil.chown(self.workdir, user=self.owner)
        self.data = self.workdir / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/custos_fault"

    def _run(self, *args: str) -> None:
        subprocess.run(
            _as_owner([str(self.bindir / args[0]), *args[1:]], self.owner),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        createdb = [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run(
            [*createdb, "-U", "postgres", "custos_fault"],
            check=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-k {self.workdir} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off"
        log = str(self.workdir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    try:
        made.create()
        yield made
    finally:
        made.remove()
