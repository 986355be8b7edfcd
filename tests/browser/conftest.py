"""Fixtures the privacy centre's browser tests share: one real server per module (with its
own SMTP sink), Debian's Chromium, and a customer who exists, confirmed the address and is
signed in in a browser context of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from api.settings import Settings
from tests.browser.harness import (
    AXE,
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveServer,
    live_server,
    require_browser,
)


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    with live_server(settings.database_url, tmp_path_factory.mktemp("centre")) as live:
        yield live
    print("\naxe-core per page:", *(f"  {k}: {v}" for k, v in AXE.items()), sep="\n")


@pytest.fixture
async def browser(server: LiveServer) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
