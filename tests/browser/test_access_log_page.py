"""Who accessed my data, and the unsubscribe and export pages in the centre's look, in a
real browser against a real server. Employees are created with the `custos create-employee`
CLI against the server's database and act over HTTP: customer care reads a customer's data
for support, legal discloses it (once under a non-disclosure period). The customer's page
shows each access with the role, purpose and time, and the disclosure it may tell with its
recipient and legal basis; another customer's page shows none of it. The unsubscribe and
export pages work in the centre's look, with JavaScript and without. Every state passes
axe-core at 1280 and 375 px, loads nothing from elsewhere and logs no error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.transactions import in_transaction

from api.marketing.unsubscribe_tokens import unsubscribe_token
from api.privacy_centre.catalogue import fill, messages
from api.rights.export import build_export, issue_download
from api.services import build_services
from api.settings import Settings
from models import RightsRequest
from tests.browser.harness import (
    AXE,
    DESKTOP,
    LiveServer,
    Watch,
    api,
    body_text,
    check_page,
    links,
    signed_in_shopper,
)
from tests.cli_helpers import REPO
from tests.conftest import TEST_SECRET, stored_customer
from tests.real_servers import server_env

STAFF_PASSWORD = "correct horse battery staple 7"
STAFF_LOGIN = """mutation L($email: String!, $password: String!) {
  staffLogin(email: $email, password: $password) {
    __typename ... on StaffLoginSuccess { token } } }"""
READ_FOR_LEGAL = """query L($id: ID!) { customer(id: $id, purpose: LEGAL) { email } }"""
READ_FOR_SUPPORT = """query R($id: ID!) {
  customer(id: $id, purpose: SUPPORT) { email supportCases { subject } } }"""
DISCLOSE = """mutation D($id: ID!, $recipient: String!, $reference: String!, $until: DateTime) {
  recordDisclosure(customerId: $id, recipient: $recipient, categories: ["contact.address"],
    legalBasis: COURT_ORDER, reference: $reference, nonDisclosureUntil: $until) {
    __typename ... on InputError { code field } } }"""
OPEN_CASE = """mutation { openSupportCase(subject: "Ring size", message: "Can I change it?") {
  __typename } }"""
PRIMARY = "rgb(31, 95, 139)"
"""The demo shop's colour (theme.css): the button has it when the centre's look applies."""


def cli_args(email: str, role: str) -> list[str]:
    return ["--email", email, "--name", role, "--role", role]


def staff(settings: Settings, email: str, role: str) -> None:
    """`custos create-employee` against the server's database, the password on stdin."""
    done = subprocess.run(
        [sys.executable, "-m", "api", "create-employee", *cli_args(email, role)],
        cwd=REPO,
        env=server_env(settings.database_url),
        input=STAFF_PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def once_roles_are_loaded(server: LiveServer, query: str, id_: str, token: str) -> None:
    """A new employee's roles reach the server's policy within 2 s (authz/watcher.py):
    wait until `query` is allowed, without using `api` (which fails on the first FORBIDDEN)."""
    import httpx

    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        for _ in range(50):
            answer = await client.post(
                "/graphql",
                json={"query": query, "variables": {"id": id_}},
                headers={"Authorization": f"Bearer {token}"},
            )
            if not answer.json().get("errors"):
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"still not allowed: {answer.json()}")


async def staff_token(server: LiveServer, email: str) -> str:
    answer = await api(server, STAFF_LOGIN, {"email": email, "password": STAFF_PASSWORD})
    token: str = answer["staffLogin"]["token"]
    return token


async def as_customer(page: Any, query: str) -> dict[str, Any]:
    """An operation from the customer's own page, with the session cookie."""
    answer: dict[str, Any] = await page.evaluate(
        """async (query) => {
          const response = await fetch("/graphql", {method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({query})});
          return response.json();
        }""",
        query,
    )
    assert not answer.get("errors"), answer
    return answer["data"]


async def test_a_customer_sees_who_accessed_their_data(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    ines = await signed_in_shopper(server, browser, "ines.accesslog@example.com")
    omar = await signed_in_shopper(server, browser, "omar.accesslog@example.com")
    staff(settings, "cara.care@shop.example", "customer_care")
    staff(settings, "lee.legal@shop.example", "legal")
    care = await staff_token(server, "cara.care@shop.example")
    legal = await staff_token(server, "lee.legal@shop.example")

    # Ines asks customer service a question; legal looks her up (an access for `legal`).
    assert (await as_customer(ines.page, OPEN_CASE))["openSupportCase"]["__typename"]
    ines_id = str(await customer_id(ines.page))
    await once_roles_are_loaded(server, READ_FOR_LEGAL, ines_id, legal)
    looked_up = await api(server, READ_FOR_LEGAL, {"id": ines_id}, token=legal)
    assert looked_up["customer"]["email"] == ines.email
    # customer care reads her data for support, ten times: one more than a page
    await once_roles_are_loaded(server, READ_FOR_SUPPORT, ines_id, care)
    for _ in range(9):
        read = await api(server, READ_FOR_SUPPORT, {"id": ines_id}, token=care)
        assert read["customer"]["email"] == ines.email
    # legal discloses her address under a court order, and once under a non-disclosure order
    later = (datetime.now(UTC) + timedelta(days=90)).isoformat()
    for recipient, reference, until in (
        ("City Police", "CO-2026-117", None),
        ("Secret Inquiry", "SEALED-1", later),
    ):
        recorded = await api(
            server,
            DISCLOSE,
            {"id": ines_id, "recipient": recipient, "reference": reference, "until": until},
            token=legal,
        )
        assert recorded["recordDisclosure"]["__typename"] == "DisclosureRecorded", recorded

    # Ines opens "Who accessed your data" from the navigation.
    page = ines.page
    await page.get_by_role("link", name="Who accessed your data").click()
    await page.wait_for_url(f"{ines.centre}/access-log")
    await page.locator("#log").wait_for()
    accesses = page.locator("#accesses > li")
    assert await accesses.count() == 10
    newest = accesses.first
    assert "Customer service" in await newest.inner_text()
    assert "Customer service and complaints" in await newest.inner_text()
    assert "email address" in await newest.inner_text()
    assert "seen" in await newest.inner_text()
    # when: the moment in the reader's language, its machine-readable form beside it
    moment = newest.locator("h3 time")
    stamp = datetime.fromisoformat(str(await moment.get_attribute("datetime")))
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)
    assert str(stamp.year) in await moment.inner_text()
    # its reference, to quote to the privacy officer
    assert len(await newest.locator(".reference").inner_text()) >= 8
    # the disclosure she may be told about, not the one under a non-disclosure order
    disclosures = page.locator("#disclosures > li")
    assert await disclosures.count() == 1
    told = await disclosures.first.inner_text()
    for words in ("City Police", "A court order", "postal address", "CO-2026-117"):
        assert words in told
    assert "Secret Inquiry" not in await page.locator("main").inner_text()
    assert "only once that period has ended" in await page.locator("main").inner_text()
    await check_page(page, "access-log", AXE)
    # "Show older accesses" loads the rest (the legal look-up) and takes focus there
    await page.get_by_role("button", name="Show older accesses").click()
    await page.get_by_text("Older accesses shown:").wait_for()
    assert await accesses.count() >= 11
    assert await page.get_by_role("button", name="Show older accesses").is_hidden()
    oldest = await accesses.nth(10).inner_text()
    assert "Legal department" in oldest
    assert "Complying with the law" in oldest
    assert await page.evaluate("document.activeElement.closest('li') !== null")
    await check_page(page, "access-log-older", AXE, screenshot=False)

    # Omar's page shows none of Ines's accesses or disclosures.
    other = omar.page
    await other.goto(f"{omar.centre}/access-log")
    await other.locator("#log").wait_for()
    assert await other.locator("#accesses > li").count() == 0
    await other.get_by_text("No member of our staff has accessed your data.").wait_for()
    await other.get_by_text("We have not shared your data with any other organisation.").wait_for()
    assert "City Police" not in await other.locator("main").inner_text()
    await check_page(other, "access-log-empty", AXE, screenshot=False)
    # and French, from the browser's language
    french = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
    await french.add_cookies(await ines.context.cookies())
    fr_page = await french.new_page()
    fr_watch = Watch(server.url)
    fr_watch.attach(fr_page)
    await fr_page.goto(f"{ines.centre}/access-log")
    await fr_page.locator("#log").wait_for()
    assert await fr_page.locator("html").get_attribute("lang") == "fr"
    first_fr = await fr_page.locator("#accesses > li").first.inner_text()
    assert "Service client" in first_fr
    assert "Une décision de justice" in await fr_page.locator("#disclosures").inner_text()
    await check_page(fr_page, "access-log-fr", AXE, screenshot=False)
    for watch in (ines.watch, omar.watch, fr_watch):
        watch.assert_clean()
    for context in (ines.context, omar.context, french):
        await context.close()


async def customer_id(page: Any) -> UUID:
    return UUID((await as_customer(page, "{ me { id } }"))["me"]["id"])


def link_of(customer: UUID, purpose: str, server: LiveServer) -> str:
    token = unsubscribe_token(
        secret=TEST_SECRET, customer_id=customer, purpose=purpose, issued_at=datetime.now(UTC)
    )
    return f"{server.url}/unsubscribe/{token}"


async def test_the_unsubscribe_page_in_the_centres_look_with_and_without_javascript(
    server: LiveServer, browser: Any
) -> None:
    shopper = await signed_in_shopper(
        server, browser, "una.unsub@example.com", consents=("marketing.email", "analytics")
    )
    me = await customer_id(shopper.page)
    await shopper.context.close()

    # From the mail's link, in a browser with no session: confirm, then done.
    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    await page.goto(link_of(me, "marketing.email", server))
    await page.get_by_role("heading", name="Unsubscribe").wait_for()
    await page.get_by_text("Stop using your data for: Marketing email?").wait_for()
    button = page.get_by_role("button", name="Unsubscribe")
    assert await button.evaluate("b => getComputedStyle(b).backgroundColor") == PRIMARY
    assert await page.locator(".banner .shop-name").inner_text() == "Custos Demo Shop"
    await check_page(page, "unsubscribe", AXE)
    await button.click()
    await page.get_by_role("heading", name="You are unsubscribed").wait_for()
    await page.get_by_text("We no longer use your data for: Marketing email.").wait_for()
    await check_page(page, "unsubscribe-done", AXE, screenshot=False)
    watch.assert_clean()
    await context.close()

    # In French, from the browser's language (axe runs scripts: with JavaScript on).
    french = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = await french.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    link = link_of(me, "analytics", server)
    await page.goto(link)
    assert await page.locator("html").get_attribute("lang") == "fr"
    question = fill(
        messages("fr")["unsubscribe.question"], {"purpose": messages("fr")["purpose.analytics"]}
    )
    await page.get_by_text(question).wait_for()
    await check_page(page, "unsubscribe-fr", AXE, screenshot=False)

    # Without JavaScript: the form still posts and the page answers.
    no_script = await browser.new_context(
        viewport=DESKTOP, locale="fr-FR", java_script_enabled=False
    )
    bare = await no_script.new_page()
    bare_watch = Watch(server.url)
    bare_watch.attach(bare)
    await bare.goto(link)
    await bare.get_by_role("button", name="Me désabonner").click()
    await bare.get_by_role("heading", name="Désabonnement confirmé").wait_for()
    assert await bare.locator("html").get_attribute("lang") == "fr"
    shown = await bare.locator("button").count()
    assert shown == 0
    bare_watch.assert_clean()
    await no_script.close()
    # the same link again answers the same page (nothing more to change)
    await page.get_by_role("button", name="Me désabonner").click()
    await page.get_by_role("heading", name="Désabonnement confirmé").wait_for()
    await check_page(page, "unsubscribe-done-fr", AXE, screenshot=False)
    watch.assert_clean()
    await french.close()


async def test_the_export_page_in_the_centres_look_with_and_without_javascript(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    services = build_services(settings)
    links_by_email = {}
    for n, email in ((71, "ezra.export@example.com"), (72, "elsa.export@example.com")):
        customer = await stored_customer(n, at=datetime.now(UTC) - timedelta(days=30))
        customer.email = email
        await customer.save()
        request = await RightsRequest.create(
            customer=customer,
            kind="access",
            status="approved",
            channel="account",
            submitted_at=datetime.now(UTC),
        )
        document = await build_export(
            customer_id=customer.id, include=lambda _: True, now=datetime.now(UTC)
        )
        async with in_transaction() as conn:
            await issue_download(
                services=services,
                request_id=request.id,
                customer_id=customer.id,
                document=document,
                using_db=conn,
            )
        mail = await server.sink.wait_for(
            to=email, subject="Your copy of your personal data is ready"
        )
        [link] = [u for u in links(body_text(mail)) if "/exports/" in u]
        # the mail was written here, with the test settings' public URL: same path, our server
        links_by_email[email] = f"{server.url}/exports/{link.split('/exports/', 1)[1]}"

    for email, javascript in (
        ("ezra.export@example.com", True),
        ("elsa.export@example.com", False),
    ):
        context = await browser.new_context(
            viewport=DESKTOP, locale="en-GB", java_script_enabled=javascript, accept_downloads=True
        )
        page = await context.new_page()
        watch = Watch(server.url)
        watch.attach(page)
        await page.goto(links_by_email[email])
        await page.get_by_role("heading", name="Your personal data").wait_for()
        await page.get_by_text("This works once, until").wait_for()
        button = page.get_by_role("button", name="Download your data")
        assert await button.evaluate("b => getComputedStyle(b).backgroundColor") == PRIMARY
        if javascript:  # axe runs in the page: not with JavaScript off
            await check_page(page, "export", AXE)
        async with page.expect_download() as pressed:
            await button.click()
        download = await pressed.value
        assert download.suggested_filename.startswith("custos-export-")
        # the link is used: opening it again says so
        await page.goto(links_by_email[email] + "?lang=fr")
        await page.get_by_role("heading", name="Ce lien ne fonctionne plus").wait_for()
        if javascript:
            await check_page(page, "export-gone-fr", AXE, screenshot=False)
        # a 410 page is the expected answer here, not an error
        watch.console_errors = [e for e in watch.console_errors if "410" not in e]
        watch.assert_clean()
        await context.close()
