"""The privacy centre's whole journey in one browser, against one real server that mails
to an SMTP sink: a new customer signs up, opens the verification link from the mail, signs
in, withdraws a marketing consent, asks for a copy of their data and enters the mailed
code; a privacy officer approves and fulfils it through the API; the customer downloads the
export from the mailed link and sees the officer's access in "who accessed my data"; then
forgets the password, resets it from the mailed link on another device, signs in with the
new one while the old session is gone; and unsubscribes from a campaign mail's link. Every
page on the way passes axe-core, loads nothing from elsewhere and logs no error."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from api.settings import Settings
from tests.browser.harness import (
    AXE,
    DESKTOP,
    LiveServer,
    Watch,
    as_staff,
    body_text,
    check_page,
    employee_token,
    links,
)

EMAIL = "jordan.journey@example.com"
PASSWORD = "a kettle on the hill"
NEW_PASSWORD = "the river under the bridge"
CODE = re.compile(r"request: (\S+)\s+code: (\d{6})")
REVIEW = """mutation R($id: ID!) { reviewRightsRequest(id: $id, decision: APPROVE, reason: "") {
  __typename } }"""
FULFIL = """mutation F($id: ID!) { fulfillRightsRequest(id: $id) {
  __typename ... on RightsRequest { status } } }"""
CREATE_CAMPAIGN = """mutation { createCampaign(subject: "Autumn lanterns",
  bodyText: "Our autumn lanterns are here.") { ... on Campaign { id } } }"""
SEND_CAMPAIGN = """mutation S($id: ID!) { sendCampaign(id: $id) {
  __typename ... on Campaign { status } } }"""


async def sign_in(page: Any, centre: str, password: str) -> None:
    await page.goto(f"{centre}/sign-in")
    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{centre}/profile")


async def test_a_customer_keeps_every_promise_of_the_policy_from_the_privacy_centre(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    context = await browser.new_context(viewport=DESKTOP, locale="en-GB", accept_downloads=True)
    page = await context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    centre = f"{server.url}/privacy"

    # Sign up with marketing email and personalised advertising ticked.
    await page.goto(f"{centre}/sign-up")
    await page.get_by_label("Marketing email").wait_for()
    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Phone number").fill("+44 20 7946 0999")
    await page.get_by_label("Street and number").fill("3 Mill Lane")
    await page.get_by_label("Town or city").fill("York")
    await page.get_by_label("Postal code").fill("YO1 7HH")
    await page.get_by_label("Country").select_option("GB")
    await page.get_by_label("Marketing email").check()
    await page.get_by_label("Personalised advertising").check()
    await page.get_by_role("button", name="Create my account").click()
    await page.get_by_role("heading", name="Check your inbox").wait_for()

    # The mailed link confirms the address; then sign in.
    mail = await server.sink.wait_for(to=EMAIL, subject="Confirm your email address")
    [verify] = [u for u in links(body_text(mail)) if "/verify-email" in u]
    await page.goto(verify)
    await page.get_by_text("Your email address is confirmed").wait_for()
    await sign_in(page, centre, PASSWORD)

    # Withdraw personalised advertising on the consents page.
    await page.get_by_role("link", name="Your consents").click()
    await page.wait_for_url(f"{centre}/consents")
    ads = page.get_by_role("switch", name="Personalised advertising")
    await ads.wait_for()
    assert await ads.get_attribute("aria-checked") == "true"
    await ads.click()
    # the status line is written once the server has answered (other switches are off from
    # the start, so one being off proves nothing)
    await (
        page.get_by_role("status")
        .filter(has_text="Personalised advertising is now off.")
        .wait_for()
    )
    assert await ads.get_attribute("aria-checked") == "false"
    await page.reload()
    await ads.wait_for()
    assert await ads.get_attribute("aria-checked") == "false"
    assert (
        await page.get_by_role("switch", name="Marketing email").get_attribute("aria-checked")
        == "true"
    )
    # dates are written as this browser's English writes them (en-GB: day, month, year)
    given = await page.locator("#state-marketing-email").inner_text()
    assert re.search(r"\b\d{1,2} [A-Z][a-z]+ 20\d\d\b", given), given

    # Ask for a copy of the data, and confirm it with the mailed code.
    await page.get_by_role("link", name="Your requests").click()
    await page.wait_for_url(f"{centre}/rights")
    await page.get_by_label("Send me a copy of my data").check()
    await page.get_by_role("button", name="Send my request").click()
    await page.get_by_text("Your request is recorded").wait_for()
    code_mail = await server.sink.wait_for(
        to=EMAIL, subject="Confirm your request about your personal data"
    )
    found = CODE.search(body_text(code_mail))
    assert found, body_text(code_mail)
    request_id, code = found.groups()
    await page.get_by_label("Code from our message").fill(code)
    await page.get_by_role("button", name="Confirm").click()
    await page.get_by_text("Thank you: your request is confirmed").wait_for()

    # A privacy officer approves and fulfils it through the API.
    officer = await employee_token(
        server, settings.database_url, "owen.officer@staff.example.com", "privacy_officer"
    )
    reviewed = await as_staff(server, officer, REVIEW, {"id": request_id})
    assert reviewed["reviewRightsRequest"]["__typename"] == "RightsRequest"
    fulfilled = await as_staff(server, officer, FULFIL, {"id": request_id})
    assert fulfilled["fulfillRightsRequest"]["status"] == "COMPLETED"

    # The customer downloads the export from the mailed link: it holds their data.
    ready = await server.sink.wait_for(to=EMAIL, subject="Your copy of your personal data is ready")
    [export] = [u for u in links(body_text(ready)) if "/exports/" in u]
    await page.goto(export)
    async with page.expect_download() as started:
        await page.get_by_role("button", name=re.compile("download", re.IGNORECASE)).click()
    saved = Path(await (await started.value).path())
    document = await asyncio.to_thread(saved.read_text, "utf-8")
    assert EMAIL in document
    assert "York" in document

    # "Who accessed my data" shows the officer's work on the request.
    await page.goto(f"{centre}/access-log")
    accesses = page.locator("#accesses > li")
    await accesses.first.wait_for()
    log = await page.locator("#accesses").inner_text()
    assert "Privacy officer" in log, log
    await check_page(page, "journey-access-log", AXE, screenshot=False)

    # Forgotten password, reset on another device: the first one is signed out.
    other = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    device = await other.new_page()
    device_watch = Watch(server.url)
    device_watch.attach(device)
    await device.goto(f"{centre}/sign-in")
    await device.get_by_role("link", name=re.compile("Forgot", re.IGNORECASE)).click()
    await device.wait_for_url(f"{centre}/forgot-password")
    await device.get_by_label("Email address").fill(EMAIL)
    await device.get_by_role("button", name="Send me a link").click()
    await device.get_by_role("heading", name="Check your inbox").wait_for()
    reset_mail = await server.sink.wait_for(to=EMAIL, subject="Choose a new password")
    [reset] = [u for u in links(body_text(reset_mail)) if "/reset-password" in u]
    await device.goto(reset)
    await device.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await device.get_by_label("New password again").fill(NEW_PASSWORD)
    await device.get_by_role("button", name="Save the new password").click()
    await device.get_by_role("heading", name="Your password is changed").wait_for()
    await device.goto(f"{centre}/sign-in")
    await device.get_by_label("Email address").fill(EMAIL)
    await device.get_by_label("Password").fill(NEW_PASSWORD)
    await device.get_by_role("button", name="Sign in").click()
    await device.wait_for_url(f"{centre}/profile")
    # the first device's session ended with the reset
    await page.goto(f"{centre}/profile")
    assert page.url == f"{centre}/sign-in?next=profile"
    # and the old password no longer signs in
    await page.get_by_label("Email address").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("The email or password is wrong.").wait_for()

    # A campaign reaches the customer, who unsubscribes from its link.
    marketer = await employee_token(
        server, settings.database_url, "mia.marketing@staff.example.com", "marketing"
    )
    created = await as_staff(server, marketer, CREATE_CAMPAIGN)
    campaign_id = created["createCampaign"]["id"]
    sent = await as_staff(server, marketer, SEND_CAMPAIGN, {"id": campaign_id})
    assert sent["sendCampaign"]["__typename"] == "Campaign"
    campaign = await server.sink.wait_for(to=EMAIL, subject="Autumn lanterns")
    [unsubscribe] = [u for u in links(body_text(campaign)) if "/unsubscribe/" in u]
    await device.goto(unsubscribe)
    await device.get_by_role("button").first.click()
    await device.goto(f"{centre}/consents")
    email_switch = device.get_by_role("switch", name="Marketing email")
    await email_switch.wait_for()
    assert await email_switch.get_attribute("aria-checked") == "false"

    watch.assert_clean()
    device_watch.assert_clean()
    await other.close()
    await context.close()
