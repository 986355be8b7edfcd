"""Account recovery in a real browser, against a real server mailing to a sink: a customer
who forgot the password asks for a link from the sign-in page, opens it (the token leaves the
address bar and goes nowhere but the `resetPassword` body), sets a new password, and every
session of the account ends; an unknown address gets the same answer and no mail; the
confirmation mail is sent again from an expired or invalid verification link, and from the
sign-in page for an account not confirmed yet. Every state of each page passes axe-core at
desktop and 375 px width, loads nothing from elsewhere and logs no error."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from api.settings import Settings
from models import Customer, EmailToken, PasswordResetToken
from tests.browser.harness import (
    AXE,
    DESKTOP,
    LiveServer,
    Watch,
    api,
    body_text,
    check_page,
    links,
    live_server,
    registered,
    signed_in_shopper,
)

RESET_SUBJECT = "Choose a new password"
VERIFY_SUBJECT = "Confirm your email address"
NEW_PASSWORD = "a kettle on the windowsill"
OLD_PASSWORD = "a lantern in the orchard"
_REQUEST_RESET = """mutation F($email: String!) { requestPasswordReset(email: $email) {
  __typename } }"""


async def _register(server: LiveServer, email: str, password: str = OLD_PASSWORD) -> str:
    """A new customer whose address is not confirmed yet; the link of the first mail."""
    return await registered(server, email, password=password, consents=())


def _link(mail: EmailMessage, page: str) -> str:
    [link] = [u for u in links(body_text(mail)) if page in u]
    return link


def _mails(server: LiveServer, to: str, subject: str) -> list[EmailMessage]:
    return [m for m in server.sink.messages() if m["To"] == to and m["Subject"] == subject]


async def _mail_number(server: LiveServer, to: str, subject: str, n: int) -> EmailMessage:
    """The `n`th message (from 1) to `to` with `subject`, once it has arrived (20 s)."""
    for _ in range(200):
        arrived = _mails(server, to, subject)
        if len(arrived) >= n:
            return arrived[n - 1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"mail {n} {subject!r} did not arrive")


async def _context(
    browser: Any, server: LiveServer, locale: str = "en-GB"
) -> tuple[Any, Any, Watch]:
    context = await browser.new_context(viewport=DESKTOP, locale=locale)
    page = await context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    return context, page, watch


async def test_a_forgotten_password_is_reset_from_the_mailed_link(
    server: LiveServer, browser: Any
) -> None:
    email = "recovery.reset@example.com"
    shopper = await signed_in_shopper(server, browser, email)  # context A, on the profile
    context, page, watch = await _context(browser, server)  # context B: another device
    centre = shopper.centre
    sent: list[tuple[str, str, dict[str, str], str | None]] = []

    async def record(request: Any) -> None:
        headers = await request.all_headers()
        sent.append((request.method, request.url, headers, request.post_data))

    page.on("request", record)

    # From sign-in, "Forgot your password?" leads to the request form.
    await page.goto(f"{centre}/sign-in")
    await check_page(page, "sign-in-with-recovery", AXE, screenshot=False)
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.wait_for_url(f"{centre}/forgot-password")
    await check_page(page, "forgot-password", AXE)
    # a malformed address is marked on the field, in the catalogue's words
    await page.get_by_label("Email address").fill("not an address")
    await page.get_by_role("button", name="Send me a link").click()
    await page.locator("#email-error").get_by_text("Enter a valid email address.").wait_for()
    assert await page.get_by_label("Email address").get_attribute("aria-invalid") == "true"
    assert await page.evaluate("document.activeElement.id") == "email"
    await check_page(page, "forgot-password-error", AXE, screenshot=False)
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Send me a link").click()
    await page.get_by_role("heading", name="Check your inbox").wait_for()
    assert "If an account uses this address, a mail is on its way" in (
        await page.locator("#sent-text").inner_text()
    )
    assert "30 minutes" in await page.locator("#sent-text").inner_text()
    await check_page(page, "forgot-password-sent", AXE, screenshot=False)

    # The mail's link opens the reset page; the token leaves the address bar at once.
    link = _link(await server.sink.wait_for(to=email, subject=RESET_SUBJECT), "/reset-password")
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert link.startswith(f"{centre}/reset-password?token=")
    response = await page.goto(link)
    assert response is not None
    assert response.headers["referrer-policy"] == "no-referrer"
    await page.get_by_label("New password", exact=True).wait_for()
    assert page.url == f"{centre}/reset-password"
    assert token not in await page.evaluate("window.location.href")
    hrefs = await page.eval_on_selector_all("a", "links => links.map(a => a.href)")
    assert hrefs
    assert not [h for h in hrefs if token in h]
    await check_page(page, "reset-password", AXE)
    # a password the API refuses is marked on its field; the link still works
    await page.get_by_label("New password", exact=True).fill("short")
    await page.get_by_label("New password again").fill("short")
    await page.get_by_role("button", name="Save the new password").click()
    note = page.locator("#newPassword-error")
    await note.get_by_text("8 to 256 characters").wait_for()
    assert await page.get_by_label("New password", exact=True).get_attribute("aria-invalid") == (
        "true"
    )
    await check_page(page, "reset-password-error", AXE, screenshot=False)
    # two different passwords are caught before anything is sent
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD + "!")
    before = len(sent)
    await page.get_by_role("button", name="Save the new password").click()
    await page.locator("#confirmPassword-error").get_by_text("The two passwords differ").wait_for()
    assert not [s for s in sent[before:] if s[1].endswith("/graphql")]

    # The French catalogue: the language link keeps the page usable, without the token.
    await page.get_by_role("link", name="Français").click()
    await page.get_by_label("Nouveau mot de passe", exact=True).wait_for()
    assert page.url == f"{centre}/reset-password?lang=fr"
    assert await page.locator("html").get_attribute("lang") == "fr"
    await check_page(page, "reset-password-fr", AXE, screenshot=False)
    await page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Nouveau mot de passe, à nouveau").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Enregistrer le nouveau mot de passe").click()
    await page.get_by_role("heading", name="Votre mot de passe est changé").wait_for()
    await check_page(page, "reset-password-done", AXE, screenshot=False)
    assert await page.evaluate("sessionStorage.length") == 0

    # The token went nowhere but the body of the resetPassword request.
    await asyncio.sleep(0.2)  # the request log's handlers are asynchronous
    for method, url, headers, body in sent:
        if url == link:  # the mail's link itself, once
            continue
        assert token not in url, url
        assert not [v for v in headers.values() if token in v], (url, headers)
        if body is not None and token in body:
            assert (method, url) == ("POST", f"{server.url}/graphql")
            assert "resetPassword" in json.loads(body)["query"]
    assert sum(1 for _, url, _, _ in sent if url == link) == 1

    # Sign in with the new password; the old one no longer works.
    await page.get_by_role("link", name="Se connecter").first.click()
    await page.wait_for_url(f"{centre}/sign-in?lang=fr")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_label("Mot de passe").fill(shopper.password)
    await page.get_by_role("button", name="Se connecter").click()
    await page.get_by_text("adresse e-mail ou le mot de passe est incorrect.").wait_for()
    await page.get_by_label("Mot de passe").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{centre}/profile?lang=fr")

    # Context A's session ended with the reset: its next page load is sent to sign in.
    await shopper.page.reload()
    assert shopper.page.url == f"{centre}/sign-in?next=profile"

    # The link used a second time says it is not valid, and offers a new one.
    await page.goto(link)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD + " again")
    await page.get_by_label("New password again").fill(NEW_PASSWORD + " again")
    await page.get_by_role("button", name="Save the new password").click()
    await page.get_by_text("This link is not valid: it was already used").wait_for()
    assert await page.locator("#choose").is_hidden()
    await check_page(page, "reset-password-invalid", AXE, screenshot=False)
    await page.get_by_role("link", name="Ask for a new link").click()
    await page.wait_for_url(f"{centre}/forgot-password")
    watch.assert_clean()
    shopper.watch.assert_clean()
    await context.close()
    await shopper.context.close()


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    server: LiveServer, browser: Any
) -> None:
    known, unknown = "recovery.known@example.com", "recovery.nobody@example.com"
    await _register(server, known)
    context, page, watch = await _context(browser, server)
    answers = []
    for email in (unknown, known):
        await page.goto(f"{server.url}/privacy/forgot-password")
        await page.get_by_label("Email address").fill(email)
        async with page.expect_response(f"{server.url}/graphql") as response:
            await page.get_by_role("button", name="Send me a link").click()
        answers.append(await (await response.value).json())
        await page.get_by_role("heading", name="Check your inbox").wait_for()
        answers.append(await page.locator("#sent").inner_text())
    assert answers[0:2] == answers[2:4]
    assert answers[0] == {
        "data": {
            "requestPasswordReset": {
                "__typename": "PasswordResetRequested",
                "linkValidMinutes": 30,
            }
        }
    }
    # the known address's mail, asked for second, arrives; none ever goes to the unknown one
    await server.sink.wait_for(to=known, subject=RESET_SUBJECT)
    await asyncio.sleep(1)
    assert [m for m in server.sink.messages() if m["To"] == unknown] == []
    # "Ask again" brings the form back
    await page.get_by_role("button", name="Ask again").click()
    assert await page.evaluate("document.activeElement.id") == "email"
    watch.assert_clean()
    await context.close()


async def test_a_reset_link_that_expired_or_is_missing_says_so(
    server: LiveServer, browser: Any
) -> None:
    email = "recovery.expired@example.com"
    await _register(server, email)
    await api(server, _REQUEST_RESET, {"email": email})
    link = _link(await server.sink.wait_for(to=email, subject=RESET_SUBJECT), "/reset-password")
    customer = await Customer.get(email=email)
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert await PasswordResetToken.filter(customer_id=customer.id).update(expires_at=past) == 1
    context, page, watch = await _context(browser, server)
    await page.goto(link)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("New password again").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Save the new password").click()
    await page.get_by_role("alert").get_by_text("This link has expired.").wait_for()
    await check_page(page, "reset-password-expired", AXE, screenshot=False)
    assert await page.get_by_role("link", name="Ask for a new link").get_attribute("href") == (
        "/privacy/forgot-password"
    )
    # nothing changed: the old password still signs in
    assert (await Customer.get(id=customer.id)).password_hash == customer.password_hash
    # without a token (and none kept by the tab), the page says it needs the mail's link
    await page.goto(f"{server.url}/privacy/reset-password")
    await page.get_by_text("This page needs the link from our message").wait_for()
    assert await page.locator("#choose").is_hidden()
    await check_page(page, "reset-password-missing", AXE, screenshot=False)
    watch.assert_clean()
    await context.close()


async def test_the_confirmation_mail_is_sent_again_from_an_expired_or_invalid_link(
    server: LiveServer, browser: Any
) -> None:
    email = "recovery.resend@example.com"
    first = await _register(server, email)
    customer = await Customer.get(email=email)
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert await EmailToken.filter(customer_id=customer.id).update(expires_at=past) == 1
    context, page, watch = await _context(browser, server)

    # An invalid link offers to send the mail again too.
    await page.goto(f"{server.url}/privacy/verify-email?token=not-a-token")
    await page.get_by_text("This link is not valid, or it was already used").wait_for()
    await page.get_by_role("heading", name="Send the confirmation mail again").wait_for()
    await check_page(page, "verify-email-invalid", AXE, screenshot=False)

    await page.goto(first)
    await page.get_by_text("This link has expired.").wait_for()
    await check_page(page, "verify-email-expired", AXE, screenshot=False)
    # a malformed address is marked on the field
    await page.get_by_label("Email address").fill("nobody@")
    await page.get_by_role("button", name="Send the mail again").click()
    await page.locator("#email-error").get_by_text("Enter a valid email address.").wait_for()
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Send the mail again").click()
    resent = page.locator("#resent")
    await resent.get_by_text("a new link is on its way").wait_for()
    assert "48 hours" in await resent.inner_text()
    assert await page.evaluate("document.activeElement.id") == "resent"
    await check_page(page, "verify-email-resent", AXE, screenshot=False)

    # The new mail's link confirms the address.
    second = _link(await _mail_number(server, email, VERIFY_SUBJECT, 2), "/verify-email")
    assert second != first
    await page.goto(second)
    await page.get_by_text("Your email address is confirmed").wait_for()
    assert await page.locator("#resend").is_hidden()
    assert (await Customer.get(id=customer.id)).email_verified_at is not None
    watch.assert_clean()
    await context.close()


async def test_signing_in_before_confirming_offers_the_mail_again(
    server: LiveServer, browser: Any
) -> None:
    email = "recovery.unconfirmed@example.com"
    password = OLD_PASSWORD
    await _register(server, email, password)
    context, page, watch = await _context(browser, server)
    await page.goto(f"{server.url}/privacy/sign-in?next=privacy-policy")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Your address is not confirmed yet").wait_for()
    assert page.url.endswith("/privacy/sign-in?next=privacy-policy")  # stays to say so
    await check_page(page, "sign-in-unconfirmed", AXE, screenshot=False)
    await page.get_by_role("button", name="Send the confirmation mail again").click()
    await page.locator("#resent").get_by_text("a new link is on its way").wait_for()
    await check_page(page, "sign-in-resent", AXE, screenshot=False)
    link = _link(await _mail_number(server, email, VERIFY_SUBJECT, 2), "/verify-email")
    # signed in already: on to the page asked for
    await page.get_by_role("link", name="Continue to your account").click()
    await page.wait_for_url(f"{server.url}/privacy/privacy-policy")
    await page.goto(link)
    await page.get_by_text("Your email address is confirmed").wait_for()
    watch.assert_clean()
    await context.close()


async def test_too_many_requests_are_marked_on_the_field(
    settings: Settings, browser: Any, tmp_path: Path
) -> None:
    """A server that takes one mail-sending request per client IP and window: the next one
    is refused (429, RATE_LIMITED), and the page says so on the address field."""
    with live_server(settings.database_url, tmp_path, CUSTOS_MAIL_MAX_REQUESTS_IP="1") as strict:
        async with httpx.AsyncClient(base_url=strict.url, timeout=20) as client:
            await client.post(
                "/graphql",
                json={"query": _REQUEST_RESET, "variables": {"email": "x@example.com"}},
            )
        context, page, watch = await _context(browser, strict)
        await page.goto(f"{strict.url}/privacy/forgot-password")
        await page.get_by_label("Email address").fill("recovery.limited@example.com")
        await page.get_by_role("button", name="Send me a link").click()
        await page.locator("#email-error").get_by_text("Too many attempts").wait_for()
        assert await page.evaluate("document.activeElement.id") == "email"
        assert await page.locator("#sent").is_hidden()
        await check_page(page, "forgot-password-rate-limited", AXE, screenshot=False)
        # the refusal is the only error the page met (the browser logs a 429 twice)
        assert watch.elsewhere == []
        assert watch.console_errors
        assert all("429" in e for e in watch.console_errors)
        await context.close()
