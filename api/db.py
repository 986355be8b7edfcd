"""Database wiring: one Tortoise config for the app, the CLI and the tests.

SQLite (the embedded default) is opened through `CustosSqliteClient` (below): WAL with a
busy timeout, every transaction `BEGIN IMMEDIATE` (retried while another process writes),
single statements retried on busy, and an open that fails at once with one clear line.
`unavailable_reason` tells which errors mean "the database cannot be used just now" (the
HTTP layer answers them 503 `DATABASE_UNAVAILABLE`, the CLI one line and exit 3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from tortoise import Tortoise, connections
from tortoise.backends.base.client import ConnectionWrapper, TransactionContext
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connection
from tortoise.exceptions import DBConnectionError, OperationalError
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget
from tortoise.migrations.schema_editor import BaseSchemaEditor, SqliteSchemaEditor

APP_LABEL = "models"
log = logging.getLogger("custos.db")
T = TypeVar("T")

# SQLite with several processes (issue 15, point 4). A writer waits up to BUSY_TIMEOUT_MS
# for another process's write transaction (overridable: `sqlite://path?busy_timeout=MS`);
# a transaction's BEGIN IMMEDIATE, or a single statement, that still finds the database
# busy is tried again, BUSY_ATTEMPTS times in all, before the caller sees it as unavailable.
BUSY_TIMEOUT_MS = 5000
BUSY_ATTEMPTS = 3
# What a client is told to wait before trying again when the database is unavailable.
RETRY_AFTER_SECONDS = 2


class DatabaseNotMigrated(RuntimeError):
    """The database lacks migrations the code needs; `custos migrate` applies them."""


class DatabaseUnavailable(OperationalError):
    """The database cannot be opened, reached or written just now."""


_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database is busy",
    "unable to open database",
    "readonly database",
    "disk i/o error",
    "database or disk is full",
)


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower()


def unavailable_reason(exc: BaseException) -> str | None:
    """A short reason (no data: a type or SQLite's fixed message) when `exc`, or an error
    it was raised from, means the database cannot be opened, reached or written; else
    None (a bug or a constraint is not unavailability)."""
    import asyncpg  # type: ignore[import-untyped]

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseUnavailable):
            return str(current)
        if isinstance(current, DBConnectionError):
            return "cannot connect to the database"
        if isinstance(current, sqlite3.OperationalError):
            message = str(current).lower()
            for known in _SQLITE_UNAVAILABLE:
                if known in message:
                    return known
        if isinstance(
            current,
            (
                asyncpg.PostgresConnectionError,
                asyncpg.CannotConnectNowError,
                asyncpg.AdminShutdownError,
                asyncpg.CrashShutdownError,
                asyncpg.ReadOnlySQLTransactionError,
                asyncpg.InsufficientResourcesError,
            ),
        ):
            return f"database unavailable ({type(current).__name__})"
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return "database connection closed"
        if isinstance(current, (OSError, TimeoutError)) and _from_database_driver(current):
            return f"cannot reach the database ({type(current).__name__})"
        current = current.__cause__ or current.__context__
    return None


_DRIVERS = ("/asyncpg/", "/tortoise/", "/aiosqlite/")


def _from_database_driver(exc: BaseException) -> bool:
    """Whether a network or timeout error came out of the database driver (not, say, out
    of the SMTP client or a file written for an export)."""
    tb = exc.__traceback__
    while tb is not None:
        if any(part in tb.tb_frame.f_code.co_filename.replace("\\", "/") for part in _DRIVERS):
            return True
        tb = tb.tb_next
    return False


async def _retry_busy(action: Callable[[], Awaitable[T]]) -> T:
    """`action` again while SQLite says the database is locked (it changed nothing then)."""
    for attempt in range(1, BUSY_ATTEMPTS + 1):
        try:
            return await action()
        except OperationalError as exc:
            cause = exc.args[0] if exc.args else None
            if attempt == BUSY_ATTEMPTS or not isinstance(cause, BaseException):
                raise
            if not _is_busy(cause):
                raise
            log.warning("database busy; trying again (%d/%d)", attempt, BUSY_ATTEMPTS)
    raise AssertionError("unreachable")  # pragma: no cover


class _FailSafeWrapper(ConnectionWrapper[Any]):
    """Tortoise's wrapper keeps its lock when opening the connection fails, so that every
    later query of the process waits forever (issue 15, point 5): release it."""

    async def __aenter__(self) -> Any:
        await self._lock.acquire()
        try:
            await self.ensure_connection()
        except BaseException:
            self._lock.release()
            raise
        return self.connection


class _ImmediateTransactionContext(SqliteTransactionContext):
    """A transaction that takes SQLite's write lock when it begins (BEGIN IMMEDIATE): a
    deferred one that reads and then writes fails at once ("database is locked", no busy
    wait) whenever another process wrote in between. While another process holds the lock
    it waits with the process's connection free (`CustosSqliteClient.begin_when_free`).
    Tortoise's own context kept its lock (and the task's connection) when opening the
    connection or BEGIN failed: this one releases both."""

    async def __aenter__(self) -> Any:
        client = self.connection._parent
        await client.begin_when_free(self._trxlock)
        self.connection._connection = client._connection
        self.token = _set_connection(self.connection_name, self.connection)
        return self.connection


def _set_connection(name: str, connection: Any) -> Any:
    from tortoise.connection import get_connections

    return get_connections().set(name, connection)


def _missing_directory(filename: str) -> str | None:
    """The directory a database file would be in, when it does not exist (SQLite would
    say only "unable to open database file")."""
    if filename == ":memory:" or filename.startswith("file:"):
        return None
    directory = Path(filename).expanduser().absolute().parent
    return None if directory.is_dir() else str(directory)


def _probe_open(filename: str) -> None:
    """Open the file and read its schema (not a database, no permission: fails here)."""
    uri = filename.startswith("file:")
    probe = sqlite3.connect(filename, timeout=BUSY_TIMEOUT_MS / 1000, uri=uri)
    try:
        probe.execute("SELECT count(*) FROM sqlite_master").close()
    finally:
        probe.close()


_LOCKED = object()  # the write lock was another process's: nothing was done


def _begin_now(
    db: sqlite3.Connection, wait_ms: int, work: Callable[[sqlite3.Connection], T] | None
) -> T | object:
    """On the connection's thread: BEGIN IMMEDIATE without SQLite's busy handler, _LOCKED
    at once when another process holds the write lock. Then, with `work`, `work(db)` and
    COMMIT (ROLLBACK when it raises), returning its result; without, the transaction is
    left open (None). Statements after BEGIN wait as any other (`wait_ms`)."""
    db.execute("PRAGMA busy_timeout = 0")
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            return _LOCKED
        raise
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    if work is None:
        return None
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


_CLEANUPS: set[asyncio.Task[None]] = set()  # kept until done (the loop holds tasks weakly)


def _after_cancel(cleanup: Awaitable[None]) -> None:
    task = asyncio.ensure_future(cleanup)
    _CLEANUPS.add(task)
    task.add_done_callback(_CLEANUPS.discard)


async def _end_cancelled_begin(call: asyncio.Future[Any], conn: Any, lock: asyncio.Lock) -> None:
    """After the caller of `_begin_now` was cancelled: wait for the call to end on SQLite's
    thread, roll back a transaction it left open (the caller will never commit it), then
    release the process's connection."""
    try:
        with contextlib.suppress(Exception):
            await call
        if conn._conn is not None and conn._conn.in_transaction:
            await conn._execute(conn._conn.execute, "ROLLBACK")
    except Exception:  # the connection is gone or broken: the next user reopens it
        log.warning("could not roll back after a cancelled BEGIN", exc_info=True)
    finally:
        lock.release()


class CustosSqliteClient(SqliteClient):
    """Tortoise's SQLite client, made fit for several processes and for failing clearly."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        # The busy timeout first: switching to WAL may itself wait for another process.
        busy = self.pragmas.pop("busy_timeout", BUSY_TIMEOUT_MS)
        self.pragmas = {
            "busy_timeout": int(busy),
            **self.pragmas,
            # The SQLite default, said explicitly: with WAL, NORMAL could lose the last
            # commits on power loss; an audit log is not to be lost.
            "synchronous": self.pragmas.get("synchronous", "FULL"),
        }

    def _where(self) -> str:
        return f"the SQLite database {self.filename}"

    async def create_connection(self, with_db: bool) -> None:
        if self._connection:
            return
        if missing := _missing_directory(self.filename):
            raise DatabaseUnavailable(
                f"cannot open {self._where()}: the directory {missing} does not exist"
            )
        try:
            # A plain open first, on a worker thread: aiosqlite leaves a thread behind
            # (and a traceback at exit) when its own open fails.
            if self.filename != ":memory:":
                await asyncio.to_thread(_probe_open, self.filename)
            await super().create_connection(with_db)
        except (sqlite3.Error, OSError) as exc:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.close()
                self._connection = None
            raise DatabaseUnavailable(f"cannot open {self._where()}: {exc}") from None

    def acquire_connection(self) -> ConnectionWrapper[Any]:
        return _FailSafeWrapper(self._lock, self)

    def _in_transaction(self) -> TransactionContext:
        return _ImmediateTransactionContext(SqliteTransactionWrapper(self), self._lock)

    async def begin_when_free(
        self, lock: asyncio.Lock, work: Callable[[sqlite3.Connection], T] | None = None
    ) -> T | None:
        """Take `lock` (this process's one connection) and SQLite's write lock on it (BEGIN
        IMMEDIATE). With `work`: run it and COMMIT in the same call on the connection's
        thread, then release `lock`, returning its result. Without: return with `lock`
        held and the transaction open (the caller commits and releases).

        While another process holds the write lock, this waits with `lock` released, not
        in SQLite's busy handler on the connection's thread: the process's other
        statements, reads above all, share that one connection and go on meanwhile (a
        server's reads used to stop for as long as `custos audit follow` held the lock).
        It tries again at growing intervals up to 10 ms, for as long as the busy timeout,
        then fails as busy; `_retry_busy` tries it BUSY_ATTEMPTS times in all."""
        wait_ms = int(self.pragmas["busy_timeout"])

        async def attempt() -> T | None:
            give_up = time.monotonic() + wait_ms / 1000
            pause = 0.001
            while True:
                await lock.acquire()
                call: asyncio.Future[Any] | None = None
                try:
                    await self.create_connection(with_db=True)
                    conn = cast(Any, self._connection)  # aiosqlite's, opened just above
                    call = asyncio.ensure_future(
                        conn._execute(_begin_now, conn._conn, wait_ms, work)
                    )
                    result = await asyncio.shield(call)
                except asyncio.CancelledError:
                    if call is None:
                        lock.release()
                    else:  # the call goes on on SQLite's thread: the connection is released
                        # once it has ended, with no transaction left open for the next user
                        _after_cancel(_end_cancelled_begin(call, conn, lock))
                    raise
                except sqlite3.OperationalError as exc:
                    lock.release()
                    raise OperationalError(exc) from exc
                except BaseException:
                    lock.release()
                    raise
                if result is not _LOCKED:
                    if work is not None:
                        lock.release()
                    return cast("T | None", result)
                lock.release()
                if time.monotonic() >= give_up:
                    locked = sqlite3.OperationalError("database is locked")
                    raise OperationalError(locked) from locked
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.01)

        return await _retry_busy(attempt)

    async def write_in_one_step(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in a transaction of its own (BEGIN IMMEDIATE, then COMMIT, or ROLLBACK
        when it raises), run whole on the connection's thread: one hand-over between the
        event loop and that thread instead of one per statement (each costs about 0.1 ms
        of CPU). For short writes with no await inside, such as the read path's log rows.
        Waits for another process's write lock as `begin_when_free` does."""
        return cast(T, await self.begin_when_free(self._lock, work))

    # A single statement outside a transaction that found the database busy changed
    # nothing: try it again (a script may have run in part, so it is not retried).
    async def execute_insert(self, query: str, values: list[Any]) -> int:
        return await _retry_busy(
            lambda: super(CustosSqliteClient, self).execute_insert(query, values)
        )

    async def execute_many(self, query: str, values: list[list[Any]]) -> None:
        await _retry_busy(lambda: super(CustosSqliteClient, self).execute_many(query, values))

    async def execute_query(
        self, query: str, values: list[Any] | None = None
    ) -> tuple[int, Sequence[dict[str, Any]]]:
        return await _retry_busy(
            lambda: super(CustosSqliteClient, self).execute_query(query, values)
        )

    async def execute_query_dict(
        self, query: str, values: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        return await _retry_busy(
            lambda: super(CustosSqliteClient, self).execute_query_dict(query, values)
        )


# Tortoise loads a backend by module: the SQLite connections of `tortoise_config` name
# this one, whose client is the class above.
client_class = CustosSqliteClient


def tortoise_config(database_url: str) -> dict[str, Any]:
    connection: str | dict[str, Any] = database_url
    if database_url.startswith("sqlite://"):
        expanded = expand_db_url(database_url)
        connection = {**expanded, "engine": __name__}
    elif database_url.startswith(("postgres://", "asyncpg://")):
        expanded = expand_db_url(database_url)
        connection = {**expanded, "engine": "api.db_postgres"}
    return {
        "connections": {"default": connection},
        "apps": {
            APP_LABEL: {
                "models": ["models"],
                "migrations": "models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


class _OneLineOutage(logging.Filter):
    """asyncpg's pool logs a traceback each time it fails to reconnect during an outage:
    keep its line, with the reason instead of the frames."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            reason = unavailable_reason(record.exc_info[1])
            if reason is not None:
                record.msg = f"{record.getMessage()}: {reason}"
                record.args = None
                record.exc_info = None
                record.exc_text = None
        return True


def _quiet_outage_tracebacks() -> None:
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, _OneLineOutage) for f in pool_log.filters):
        pool_log.addFilter(_OneLineOutage())


def sqlite_file(database_url: str) -> Path | None:
    """The file a `sqlite://` URL names, as written (relative to the current directory
    when relative); None for other databases and for in-memory ones. Opening a missing
    file creates it: the CLI asks this first, so that only `custos migrate` makes one."""
    if not database_url.startswith("sqlite://"):
        return None
    path = str(expand_db_url(database_url)["credentials"]["file_path"])
    if path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


async def init_db(database_url: str) -> None:
    """Connect Tortoise globally (visible from every task of this process)."""
    _quiet_outage_tracebacks()
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


def abandon_connections() -> None:
    """Drop the PostgreSQL pool's connections at once rather than closing them gracefully:
    after a task was cancelled mid-statement, PostgreSQL may still be running that statement,
    and a graceful close waits for it (Tortoise gives up after 10 s). The server rolls back
    the open transaction of a dropped connection. SQLite needs nothing: its statements run
    in this process and end with it. `close_db` afterwards has nothing left to close."""
    for conn in connections.all():
        pool = getattr(conn, "_pool", None)
        if pool is not None and hasattr(pool, "terminate"):
            pool.terminate()
            conn._pool = None


async def check_writable() -> None:
    """Raise when the database cannot be reached or written now: a write that reaches the
    disk and changes nothing (SQLite: the header's user_version set to itself, once, with
    no retry; PostgreSQL: a transaction id assigned and committed, which a read-only
    server refuses)."""
    conn = get_connection("default")
    if isinstance(conn, CustosSqliteClient):
        async with conn.acquire_connection() as raw:
            try:
                await raw.execute("BEGIN IMMEDIATE")
                async with raw.execute("PRAGMA user_version") as cursor:
                    row = await cursor.fetchone()
                version = int(row[0]) if row else 0
                await raw.execute(f"PRAGMA user_version = {version}")
                await raw.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        await raw.rollback()
                raise
    else:
        async with conn._in_transaction() as tx:
            await tx.execute_query("SELECT txid_current()")


class _Executor(MigrationExecutor):
    """Tortoise picks a schema editor by the client's module name: ours is in api.db."""

    def _schema_editor(self, atomic: bool = True, collect_sql: bool = False) -> BaseSchemaEditor:
        if isinstance(self.connection, CustosSqliteClient):
            return SqliteSchemaEditor(self.connection, atomic=atomic, collect_sql=collect_sql)
        return super()._schema_editor(atomic=atomic, collect_sql=collect_sql)


def _executor(database_url: str) -> MigrationExecutor:
    apps = tortoise_config(database_url)["apps"]
    return _Executor(get_connection("default"), apps)


async def pending_migrations(database_url: str) -> list[str]:
    """Names of migrations not yet applied (the connection must be initialised). A
    database that cannot be opened raises DatabaseUnavailable here: tortoise's planner
    would take it for an empty one."""
    await get_connection("default").execute_query("SELECT 1")
    plan = await _executor(database_url).plan([MigrationTarget(APP_LABEL, "__latest__")])
    return [step.migration.name for step in plan if not step.backward]


async def migrate(database_url: str, *, now: datetime | None = None) -> list[str]:
    """Apply every pending migration, seed the default access policy into an empty policy
    table, the first privacy policy version (in effect from `now`, default the current
    time) into an empty version table and the missing default retention rules; returns the
    names of the migrations applied."""
    from api.policy.service import seed_first_version
    from api.retention.rules import seed_default_rules
    from authz.seed import seed_policy

    pending = await pending_migrations(database_url)
    if pending:
        await _executor(database_url).migrate([MigrationTarget(APP_LABEL, "__latest__")])
    await seed_policy()
    await seed_first_version(now=now or datetime.now(UTC))
    await seed_default_rules(now=now or datetime.now(UTC))
    return pending


async def ensure_migrated(database_url: str) -> None:
    pending = await pending_migrations(database_url)
    if pending:
        raise DatabaseNotMigrated(
            f"the database is not migrated ({len(pending)} pending: {', '.join(pending)}); "
            "run `custos migrate` first"
        )


# For `tortoise -c api.db.MIGRATIONS_CONFIG makemigrations` (see `make migrations`).
# Tortoise's own client there: its executor knows no other.
MIGRATIONS_CONFIG = {
    **tortoise_config("sqlite://:memory:"),
    "connections": {"default": "sqlite://:memory:"},
}
