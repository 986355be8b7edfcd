"""Who accessed my data, and the unsubscribe and export pages in the centre's look, in a
real browser against a real server. Employees are created with the `custos create-employee`
CLI against the server's database and act over HTTP: customer care reads a customer's data
for support, legal discloses it (once under a non-disclosure period). The customer's page
shows each access with the role, purpose and time, and the disclosure it may tell with its
recipient and legal basis; another customer's page shows none of it. The customer's
browser checks each access against the signed log (log-proof.js): "not yet" until an
auditor signs a checkpoint, then "Checked"; an altered proof or a wrong published key shows
a failure for the entries it touches. The unsubscribe and export pages work in the centre's
look, with JavaScript and without. Every state passes axe-core at 1280 and 375 px, loads
nothing from elsewhere and logs no error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
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
    Shopper,
    Watch,
    api,
    as_staff,
    body_text,
    check_page,
    employee_token,
    links,
    live_server,
    require_browser,
    signed_in_shopper,
)
from tests.cli_helpers import REPO
from tests.conftest import TEST_SECRET, stored_customer
from tests.real_servers import server_env
from verifier.note import Signer

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
SIGN_CHECKPOINT = "mutation { signAuditCheckpoint { treeSize } }"
LOG_KEYS = "/.well-known/custos/log-keys"
EVIDENCE = """{ me { accessLog(first: 10) { edges { node { reference
  evidence { proof { treeSize } } } } } } }"""


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """conftest's server, but its background loop signs a checkpoint only once a day (it
    still brings rows into the tree every second): an access stays "not yet in a signed
    checkpoint" until the test's auditor signs one with `signAuditCheckpoint`."""
    require_browser()
    with live_server(
        settings.database_url,
        tmp_path_factory.mktemp("access-log"),
        CUSTOS_AUDIT_CHECKPOINT_SECONDS="86400",
    ) as live:
        yield live
    print("\naxe-core per page:", *(f"  {k}: {v}" for k, v in AXE.items()), sep="\n")


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


# --- the browser's check of each access against the signed log ------------------------------


async def accessed_twice(
    server: LiveServer, browser: Any, settings: Settings, name: str
) -> Shopper:
    """A signed-in customer with a support case, whose data customer care then read twice
    (two entries), both rows in the tree (their proofs wait only for a checkpoint)."""
    shopper = await signed_in_shopper(server, browser, f"{name}.proof@example.com")
    me = str(await customer_id(shopper.page))
    # customer care may read a customer's data while they have a case open
    assert (await as_customer(shopper.page, OPEN_CASE))["openSupportCase"]["__typename"]
    care = await employee_token(
        server, settings.database_url, f"{name}.care@shop.example", "customer_care"
    )
    for _ in range(2):
        read = await as_staff(server, care, READ_FOR_SUPPORT, {"id": me})
        assert read["customer"]["email"] == shopper.email
    for _ in range(50):  # the server's loop brings new rows into the tree every second
        nodes = [
            e["node"]
            for e in (await as_customer(shopper.page, EVIDENCE))["me"]["accessLog"]["edges"]
        ]
        if len(nodes) == 2 and all(n["evidence"] for n in nodes):
            return shopper
        await asyncio.sleep(0.2)
    raise AssertionError(f"the accesses never reached the tree: {nodes}")


async def sign_checkpoint(server: LiveServer, settings: Settings, name: str) -> int:
    auditor = await employee_token(
        server, settings.database_url, f"{name}.audit@shop.example", "auditor"
    )
    signed = await as_staff(server, auditor, SIGN_CHECKPOINT)
    size: int = signed["signAuditCheckpoint"]["treeSize"]
    return size


def requests_of(page: Any) -> list[str]:
    """The paths the page fetched by script (fetch or XHR), in order."""
    seen: list[str] = []
    page.on(
        "request",
        lambda r: (
            seen.append(r.url.split("?")[0].split("/", 3)[3])
            if r.resource_type in ("fetch", "xhr")
            else None
        ),
    )
    return seen


def proofs(page: Any) -> Any:
    return page.locator("#accesses > li .proof")


async def test_an_access_is_not_yet_checked_until_a_checkpoint_covers_it(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    nina = await accessed_twice(server, browser, settings, "nina")
    # the API has the leaves but no proof yet: no checkpoint covers the new rows
    nodes = (await as_customer(nina.page, EVIDENCE))["me"]["accessLog"]["edges"]
    assert all(item["proof"] is None for e in nodes for item in e["node"]["evidence"])
    fetched = requests_of(nina.page)
    await nina.page.goto(f"{nina.centre}/access-log")
    await nina.page.locator("#log").wait_for()
    status = proofs(nina.page)
    assert await status.count() == 2
    for at in range(2):
        await (
            status.nth(at)
            .get_by_text("Not yet in a signed checkpoint: check again in a minute")
            .wait_for()
        )
        assert await status.nth(at).get_attribute("data-state") == "pending"
    summary = nina.page.locator("#check-status")
    assert await summary.get_attribute("role") == "status"  # announced politely
    await summary.get_by_text("Accesses checked by your browser: 0 of 2.").wait_for()
    assert "Not yet in a signed checkpoint: 2." in await summary.inner_text()
    # nothing to check yet: no key list fetched, only the GraphQL calls
    assert set(fetched) == {"graphql"}
    await check_page(nina.page, "access-log-pending", AXE, screenshot=False)
    nina.watch.assert_clean()
    await nina.context.close()


async def test_each_access_is_checked_in_the_browser_and_an_altered_proof_fails(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    cleo = await accessed_twice(server, browser, settings, "cleo")
    size = await sign_checkpoint(server, settings, "cleo")
    page = cleo.page
    fetched = requests_of(page)
    # the keys are held back until the list is on screen: the list does not wait for them
    release = asyncio.Event()

    async def hold_keys(route: Any) -> None:
        await release.wait()
        await route.continue_()

    await page.route(f"**{LOG_KEYS}", hold_keys)
    await page.goto(f"{cleo.centre}/access-log")
    await page.locator("#log").wait_for()
    status = proofs(page)
    assert await status.count() == 2
    assert await status.first.inner_text() == "Checking…"
    release.set()
    rows = f"checkpoint of {size:,} rows, signed"
    for at in range(2):
        await (
            status.nth(at)
            .get_by_text("Checked: this access is in the log our auditors verify")
            .wait_for()
        )
        assert rows in await status.nth(at).inner_text()
        assert str(datetime.now(UTC).year) in await status.nth(at).inner_text()
        assert await status.nth(at).get_attribute("data-state") == "checked"
    await (
        page.locator("#check-status")
        .get_by_text("Accesses checked by your browser: 2 of 2.")
        .wait_for()
    )
    # one key list per page load, and nothing but it and the GraphQL calls
    assert sorted(fetched) == sorted(["graphql", "graphql", LOG_KEYS.lstrip("/")])
    await page.unroute(f"**{LOG_KEYS}")
    await check_page(page, "access-log-checked", AXE)
    # what "checked" means, behind a disclosure widget
    explain = page.locator("details.explain")
    await explain.locator("summary").click()
    await explain.get_by_text("The checking code comes from this website").wait_for()
    await check_page(page, "access-log-explained", AXE, screenshot=False)

    # The same page with one character of the newest entry's first proof hash changed on
    # the way: that entry fails (so the check really ran), the other is still checked.
    altered: list[str] = []

    async def alter_proof(route: Any) -> None:
        response = await route.fetch()
        body = await response.json()
        me = (body.get("data") or {}).get("me") or {}
        if "accessLog" in me:
            node = me["accessLog"]["edges"][0]["node"]
            hashes = node["evidence"][0]["proof"]["hashes"]
            hashes[0] = ("B" if hashes[0][0] == "A" else "A") + hashes[0][1:]
            altered.append(node["reference"])
        await route.fulfill(response=response, json=body)

    await page.route("**/graphql", alter_proof)
    await page.reload()
    await page.locator("#log").wait_for()
    await status.first.get_by_text(
        "Check failed: the proof does not match the signed log."
    ).wait_for()
    assert await status.first.get_attribute("data-state") == "failed"
    reference = await page.locator("#accesses > li .reference").first.inner_text()
    assert altered == [reference]
    assert f"quoting the reference {reference}" in await status.first.inner_text()
    await status.nth(1).get_by_text("Checked: this access is in the log").wait_for()
    summary = await page.locator("#check-status").inner_text()
    assert "1 of 2." in summary
    assert "Failed the check: 1" in summary
    await check_page(page, "access-log-failed", AXE)
    cleo.watch.assert_clean()
    await cleo.context.close()


async def test_a_wrong_key_list_fails_every_check_in_both_languages(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    theo = await accessed_twice(server, browser, settings, "theo")
    await sign_checkpoint(server, settings, "theo")
    published = await api_get_json(server, LOG_KEYS)
    # another key under the log's own name: the checkpoint names it, but it did not sign
    impostor = Signer.generate(published["origin"]).verifier
    forged = {**published, "keys": [{**published["keys"][-1], "vkey": impostor.vkey}]}

    async def wrong_keys(route: Any) -> None:
        await route.fulfill(json=forged)

    page = theo.page
    await page.route(f"**{LOG_KEYS}", wrong_keys)
    await page.goto(f"{theo.centre}/access-log")
    await page.locator("#log").wait_for()
    status = proofs(page)
    for at in range(2):
        await (
            status.nth(at)
            .get_by_text(
                "Check failed: the log's checkpoint is not signed with one of the log's "
                "published keys."
            )
            .wait_for()
        )
    assert "Checked:" not in await page.locator("#accesses").inner_text()
    await check_page(page, "access-log-wrong-key", AXE, screenshot=False)
    # a key list that is not one: refused; an answer that is not JSON: not checked
    for body, shown in (
        (
            '{"origin": "x", "keys": [5, null, "\\u0000"]}',
            "the log's published keys are not valid.",
        ),
        ("<html>maintenance</html>", "Not checked: the log's keys could not be loaded."),
    ):
        await page.unroute(f"**{LOG_KEYS}")
        await page.route(f"**{LOG_KEYS}", answering(body))
        await page.reload()
        await page.locator("#log").wait_for()
        for at in range(2):
            await status.nth(at).get_by_text(shown).wait_for()
    await page.locator("#log").wait_for()
    theo.watch.assert_clean()

    # In French (the browser's language), with the real keys: checked; with the wrong ones,
    # the failure in French.
    french = await browser.new_context(viewport=DESKTOP, locale="fr-FR")
    await french.add_cookies(await theo.context.cookies())
    fr_page = await french.new_page()
    fr_watch = Watch(server.url)
    fr_watch.attach(fr_page)
    await fr_page.goto(f"{theo.centre}/access-log")
    await fr_page.locator("#log").wait_for()
    fr_status = proofs(fr_page)
    for at in range(2):
        await (
            fr_status.nth(at)
            .get_by_text("Vérifié : cet accès figure dans le journal que nos auditeurs contrôlent")
            .wait_for()
        )
    assert "lignes, signé le" in await fr_status.first.inner_text()
    await (
        fr_page.locator("#check-status")
        .get_by_text("Accès vérifiés par votre navigateur : 2 sur 2.")
        .wait_for()
    )
    assert await fr_page.locator("details.explain summary").inner_text() == (
        "Que signifie « vérifié » ?"
    )
    await check_page(fr_page, "access-log-checked-fr", AXE, screenshot=False)
    await fr_page.route(f"**{LOG_KEYS}", wrong_keys)
    await fr_page.reload()
    await fr_page.locator("#log").wait_for()
    await fr_status.first.get_by_text(
        "Échec de la vérification : le point de contrôle du journal n'est signé avec aucune"
    ).wait_for()
    assert "en citant la référence" in await fr_status.first.inner_text()
    await check_page(fr_page, "access-log-wrong-key-fr", AXE, screenshot=False)
    fr_watch.assert_clean()
    await french.close()
    await theo.context.close()


def answering(body: str) -> Any:
    """A route handler that answers `body` (status 200) instead of the server."""

    async def handler(route: Any) -> None:
        await route.fulfill(body=body)

    return handler


async def api_get_json(server: LiveServer, path: str) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        answer = await client.get(path)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body
