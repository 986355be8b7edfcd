"""What the privacy centre's browser tests share: Debian's Chromium driven by Playwright
(no browser download: `executable_path`), a real `custos serve` whose public URL is its own
address, delivering mail over SMTP to a sink the test reads, and the checks every page
passes (axe-core, 375 px wide, nothing from elsewhere, no console error)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.cli_helpers import REPO
from tests.real_servers import free_port, server_env, wait_up

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 375, "height": 800}
SCREENSHOTS = REPO / "docs" / "screenshots"
BLOCKING = ("serious", "critical")
"""axe impacts that fail a test."""
AXE: dict[str, str] = {}
"""Each page's axe outcome (check_page), printed when a module's server stops."""


def require_browser() -> None:
    """Skip when Debian's chromium is missing, unless CUSTOS_REQUIRE_BROWSER says the run
    must have it (CI sets it: a missing browser fails there instead of skipping)."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)"
    if os.environ.get("CUSTOS_REQUIRE_BROWSER"):
        pytest.fail(f"CUSTOS_REQUIRE_BROWSER is set and {reason}")
    pytest.skip(reason)


class MailSink:
    """An SMTP relay (aiosmtpd, in its own thread) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self._messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self._messages.append(parsed)
        return "250 Message accepted for delivery"

    def __enter__(self) -> MailSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    async def wait_for(self, *, to: str, subject: str) -> EmailMessage:
        """The first message to `to` with `subject`, once the server has sent it (20 s)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for message in self.messages():
                if message["To"] == to and message["Subject"] == subject:
                    return message
            await asyncio.sleep(0.1)
        raise AssertionError(f"no mail {subject!r} arrived")


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


URL = re.compile(r"https?://[^\s<>\"']+")


def links(text: str) -> list[str]:
    """The addresses in a mail's text, without the punctuation that may end a sentence."""
    return [url.rstrip(".,;:)") for url in URL.findall(text)]


@dataclass
class LiveServer:
    url: str
    log: Path
    sink: MailSink


@contextlib.contextmanager
def live_server(database_url: str, log_dir: Path, **env: str) -> Iterator[LiveServer]:
    """`custos serve` on the test database, its public URL its own address (so mail links
    lead back to it), sending mail every 0.2 s to a sink of its own."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = log_dir / "server.log"
    with MailSink() as sink:
        environment = server_env(database_url)
        environment.update(
            CUSTOS_PUBLIC_URL=url,
            CUSTOS_MAIL_BACKEND="smtp",
            CUSTOS_SMTP_HOST="127.0.0.1",
            CUSTOS_SMTP_PORT=str(sink.port),
            CUSTOS_SMTP_TIMEOUT_SECONDS="5",
            CUSTOS_MAIL_POLL_SECONDS="0.2",
            **env,
        )
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "api", "serve", "--port", str(port)],
                cwd=REPO,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_up(url, process, log)
            yield LiveServer(url=url, log=log, sink=sink)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Watch:
    """What a page did that it must not: requests to anywhere but the server, console
    errors (a CSP violation is one)."""

    origin: str
    elsewhere: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_request(request: Any) -> None:
            url = request.url
            if not url.startswith((self.origin + "/", "data:")):
                self.elsewhere.append(url)

        def on_console(message: Any) -> None:
            if message.type == "error":
                self.console_errors.append(message.text)

        def on_response(response: Any) -> None:
            if response.status >= 400:
                self.console_errors.append(f"{response.status} {response.url.split('?')[0]}")

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def assert_clean(self) -> None:
        assert self.elsewhere == [], f"requests elsewhere: {self.elsewhere}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"


async def check_page(
    page: Any, name: str, axe_results: dict[str, str], *, screenshot: bool = True
) -> None:
    """The page as it stands, at desktop and then mobile width: no serious or critical axe
    violation, no horizontal scroll at 375 px, and (with `screenshot`, when
    CUSTOS_SCREENSHOTS=1) what a screen of it shows, in docs/screenshots/NAME-WIDTH.png.
    The axe outcome is kept in `axe_results` under `name`."""
    from axe_playwright_python.async_playwright import Axe

    outcomes = []
    for width, viewport in (("desktop", DESKTOP), ("mobile", MOBILE)):
        await page.set_viewport_size(viewport)
        results = await Axe().run(page)
        violations = results.response["violations"]
        blocking = [v for v in violations if v["impact"] in BLOCKING]
        assert blocking == [], f"{name} ({width}): {results.generate_report()}"
        outcomes.append(f"{width}: {len(violations)} minor or moderate")
        if width == "mobile":
            scroll = await page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= MOBILE["width"], f"{name} scrolls sideways at 375 px ({scroll})"
        if screenshot and os.environ.get("CUSTOS_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"))
    await page.set_viewport_size(DESKTOP)
    axe_results[name] = "; ".join(outcomes)


@dataclass
class Shopper:
    """A customer signed in in a browser context of their own: `page` is on the profile."""

    email: str
    password: str
    context: Any
    page: Any
    watch: Watch
    centre: str


async def api(
    server: LiveServer,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
) -> dict[str, Any]:
    """One GraphQL operation over HTTP to the live server (for what the test sets up or
    does as someone else, an officer say), its `data`; an error fails the test."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        answer = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
    body = answer.json()
    assert answer.status_code == 200, body
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


_REGISTER = """mutation R($input: RegisterInput!) { register(input: $input) { __typename } }"""
_VERIFY = """mutation V($token: String!) { verifyEmail(token: $token) { __typename } }"""


async def registered(
    server: LiveServer,
    email: str,
    *,
    password: str = "a lantern in the orchard",  # noqa: S107 (a test customer's)
    consents: tuple[str, ...] = ("marketing.email",),
) -> str:
    """A new customer, registered through the API with `consents` granted, the address not
    confirmed yet: the verification link of the mail they got."""
    answer = await api(
        server,
        _REGISTER,
        {
            "input": {
                "email": email,
                "password": password,
                "phone": "+44 20 7946 0321",
                "address": {
                    "line1": "1 Orchard Lane",
                    "city": "Bath",
                    "postalCode": "BA1 1AA",
                    "country": "GB",
                },
                "consents": [{"purpose": p, "granted": True} for p in consents],
            }
        },
    )
    assert answer["register"]["__typename"] == "RegistrationAccepted", answer
    mail = await server.sink.wait_for(to=email, subject="Confirm your email address")
    [link] = [u for u in links(body_text(mail)) if "/verify-email" in u]
    return link


async def signed_in_shopper(
    server: LiveServer,
    browser: Any,
    email: str,
    *,
    password: str = "a lantern in the orchard",  # noqa: S107 (a test customer's)
    consents: tuple[str, ...] = ("marketing.email",),
    locale: str = "en-GB",
) -> Shopper:
    """A new customer (registered through the API with `consents` granted, the address
    confirmed from the mailed link), signed in through the sign-in page."""
    link = await registered(server, email, password=password, consents=consents)
    token = link.split("token=", 1)[1]
    verified = await api(server, _VERIFY, {"token": token})
    assert verified["verifyEmail"]["__typename"] == "EmailVerified", verified
    context = await browser.new_context(viewport=DESKTOP, locale=locale)
    page = await context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    centre = f"{server.url}/privacy"
    await page.goto(f"{centre}/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{centre}/profile")
    return Shopper(email, password, context, page, watch, centre)


async def employee_token(server: LiveServer, database_url: str, email: str, role: str) -> str:
    """A new employee with `role`, made with `custos create-employee` on the server's
    database (the password on stdin), signed in over the API: their bearer token."""
    from tests.real_servers import server_env

    password = f"staff passphrase for {role}"
    options = ("--email", email, "--name", role.replace("_", " ").title(), "--role", role)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api", "create-employee", *options],
        input=password + "\n",
        cwd=REPO,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    signed_in = await api(server, _STAFF_LOGIN, {"email": email, "password": password})
    token: str = signed_in["staffLogin"]["token"]
    return token


_STAFF_LOGIN = """mutation L($email: String!, $password: String!) {
  staffLogin(email: $email, password: $password) { ... on StaffLoginSuccess { token } } }"""


async def as_staff(
    server: LiveServer, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One operation as an employee, asked again while the server has not learnt a grant
    made moments ago (its policy poll: FORBIDDEN until then, at most a few seconds)."""
    import httpx

    deadline = time.monotonic() + 15
    while True:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            answer = await client.post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {token}"},
            )
        body = answer.json()
        if not body.get("errors"):
            data: dict[str, Any] = body["data"]
            return data
        codes = {e.get("extensions", {}).get("code") for e in body["errors"]}
        assert codes == {"FORBIDDEN"}, body  # only a grant not learnt yet is asked again
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.3)
