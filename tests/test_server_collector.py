"""A server's cyclic collector (api/app.py YOUNG_OBJECTS): once the lifespan has started, the
objects built at startup are frozen out of the collector's passes and its youngest
generation holds YOUNG_OBJECTS before a pass, not Python's 700. Checked in a process of its
own, as a server starts (the setting is the process's)."""

from __future__ import annotations

import json
import subprocess
import sys

from api.app import YOUNG_OBJECTS
from tests.cli_helpers import REPO
from tests.real_servers import server_env

_START = """
import asyncio, gc, json
from api.app import create_app
from api.settings import Settings

async def main():
    before = gc.get_threshold()
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        print(json.dumps({"before": before, "during": gc.get_threshold(),
                          "frozen": gc.get_freeze_count()}))

asyncio.run(main())
"""


def test_a_started_server_collects_young_objects_less_often(
    database_url: str, database: None
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _START],
        cwd=REPO,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"][0] == 700  # Python's default, before the server starts
    assert seen["during"] == [YOUNG_OBJECTS, *seen["before"][1:]]
    assert YOUNG_OBJECTS > 700
    assert seen["frozen"] > 0  # the startup objects are out of the passes
