"""Settings and a database connection for one command. Every command that uses the
database runs through `run` (or `with_db`), so that what goes wrong on the way (invalid
settings, no database file, not migrated, unavailable) ends in one line (api/cli/__init__.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import ValidationError

from api.db import close_db, ensure_migrated, init_db, sqlite_file, unavailable_reason
from api.services import Services, build_services
from api.settings import Settings, get_settings

Work = Callable[[Services], Awaitable[int]]


class NoDatabase(Exception):
    """A command that uses an existing database found no SQLite file there. Opening it
    would create an empty file (and then fail): only `custos migrate` creates one."""

    def __init__(self, path: Path) -> None:
        super().__init__(f'no database at {path}; run "custos migrate" (or "make run") first')


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(str(e["msg"]) for e in exc.errors())
        raise SystemExit(f"custos: invalid settings: {messages}") from None


async def with_db(settings: Settings, work: Work, *, create: bool = False) -> int:
    """Run `work` connected; a database that cannot be opened, reached or written ends the
    command (in `main`) with one line, whatever the step that found it. A SQLite file that
    does not exist is created only when `create` says so (else NoDatabase)."""
    file = sqlite_file(settings.database_url)
    if not create and file is not None and not file.exists():
        raise NoDatabase(file)
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


def run(work: Work, *, migrated: bool = True) -> int:
    """`work` on the configured database, which must exist (and, unless `migrated` is
    False, have every migration applied: DatabaseNotMigrated otherwise)."""
    settings = load_settings()

    async def checked(services: Services) -> int:
        if migrated:
            await ensure_migrated(settings.database_url)
        return await work(services)

    return asyncio.run(with_db(settings, checked))
