"""The rights page in a real browser against a real server and SMTP sink: a customer asks
for a copy of their data, confirms it with the mailed code (a wrong code is refused and
changes nothing), follows it while an officer (created with `custos create-employee`)
approves and fulfils it through the API, then downloads the export from the mailed link; a
rectification with a hostile value is a field error; the page speaks French. Every state
passes axe-core at desktop and phone width."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from api.settings import Settings
from tests.browser.harness import (
    AXE,
    LiveServer,
    api,
    as_staff,
    body_text,
    check_page,
    employee_token,
    links,
    signed_in_shopper,
)

OFFICER_EMAIL = "olive.officer@staff.example.com"
REVIEW = """mutation R($id: ID!) { reviewRightsRequest(id: $id, decision: APPROVE, reason: "") {
  __typename ... on RightsError { code } } }"""
FULFIL = """mutation F($id: ID!) { fulfillRightsRequest(id: $id) {
  __typename ... on RightsRequest { status } ... on RightsError { code } } }"""
CODE = re.compile(r"request: (\S+)\s+code: (\d{6})")


async def _approve_and_fulfil(server: LiveServer, settings: Settings, request_id: str) -> None:
    """An officer, made with `custos create-employee`, approves and fulfils the request."""
    token = await employee_token(server, settings.database_url, OFFICER_EMAIL, "privacy_officer")
    reviewed = await as_staff(server, token, REVIEW, {"id": request_id})
    assert reviewed["reviewRightsRequest"]["__typename"] == "RightsRequest", reviewed
    fulfilled = await as_staff(server, token, FULFIL, {"id": request_id})
    assert fulfilled["fulfillRightsRequest"]["status"] == "COMPLETED", fulfilled


async def test_a_customer_asks_for_their_data_confirms_follows_and_downloads_it(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    shopper = await signed_in_shopper(server, browser, "rowan.rights@example.com")
    page, centre = shopper.page, shopper.centre
    rights = f"{centre}/rights"

    # The navigation leads to the page; nothing asked yet.
    await page.get_by_role("link", name="Your requests").click()
    await page.wait_for_url(rights)
    await page.locator("#none").wait_for()
    await check_page(page, "rights-empty", AXE, screenshot=False)

    # Erasure shows what it means before anything is sent, and wants it confirmed.
    await page.get_by_label("Erase my data").check()
    await page.get_by_text("Your account is closed").wait_for()
    assert "legal hold" in await page.locator("#erasure-warning").inner_text()
    await page.get_by_role("button", name="Send my request").click()
    await page.locator("#erasure-confirm-error").get_by_text("Tick this box").wait_for()
    assert await page.get_by_label("I understand").get_attribute("aria-invalid") == "true"
    await check_page(page, "rights-erasure", AXE, screenshot=False)

    # Ask for a copy: the request waits for its mailed code, its field focused.
    await page.get_by_label("Send me a copy of my data").check()
    await page.get_by_role("button", name="Send my request").click()
    await page.get_by_text("Your request is recorded").wait_for()
    item = page.locator("#requests > li")
    await item.get_by_text("Waiting for the code we mailed you").wait_for()
    assert await page.evaluate("document.activeElement.name") == "code"

    # The mail carries the code and links to this page.
    mail = await server.sink.wait_for(
        to=shopper.email, subject="Confirm your request about your personal data"
    )
    text = body_text(mail)
    assert rights in links(text)
    match = CODE.search(text)
    assert match, text
    request_id, code = match.groups()
    assert await item.get_attribute("id") == f"request-{request_id}"

    # A wrong code is refused on its field, with the attempts left; nothing changes.
    await page.get_by_label("Code from our message").fill("000000" if code != "000000" else "1")
    await page.get_by_role("button", name="Confirm").click()
    error = page.locator(f"#code-{request_id}-error")
    await error.get_by_text("This code is wrong").wait_for()
    assert "Attempts left before you need a new code: 4." in await error.inner_text()
    assert await page.get_by_label("Code from our message").get_attribute("aria-invalid") == "true"
    await page.reload()
    await item.get_by_text("Waiting for the code we mailed you").wait_for()
    await check_page(page, "rights-code", AXE, screenshot=False)
    await page.get_by_label("Code from our message").fill("000000" if code != "000000" else "1")
    await page.get_by_role("button", name="Confirm").click()
    await error.get_by_text("Attempts left before you need a new code: 3.").wait_for()

    # The right code: received, due in a month.
    await page.get_by_label("Code from our message").fill(code)
    await page.get_by_role("button", name="Confirm").click()
    await page.get_by_text("Thank you: your request is confirmed").wait_for()
    await item.get_by_text("Received, waiting for our review").wait_for()
    facts = await item.locator("dl").inner_text()
    assert "We answer by" in facts
    assert "Received on" in facts
    assert await page.get_by_label("Code from our message").count() == 0
    await check_page(page, "rights", AXE)

    # Asking for a copy again while this one runs: the page points to it, nothing is added.
    await page.get_by_label("Send me a copy of my data").check()
    await page.get_by_role("button", name="Send my request").click()
    await page.get_by_text("You already have a request of this kind under way").wait_for()
    assert await page.locator("#requests > li").count() == 1

    # The officer approves and fulfils it; the page shows it completed, the link mailed.
    await _approve_and_fulfil(server, settings, request_id)
    await page.reload()
    await item.locator("dd").get_by_text("Completed", exact=True).wait_for()
    note = page.locator(f"#export-{request_id}")
    assert "We mailed you a link to download your data" in await note.inner_text()
    await check_page(page, "rights-completed", AXE, screenshot=False)

    # The export is downloaded from the mailed link (which also leads back to the page).
    ready = await server.sink.wait_for(
        to=shopper.email, subject="Your copy of your personal data is ready"
    )
    found = links(body_text(ready))
    assert rights in found
    [export] = [u for u in found if "/exports/" in u]
    await page.goto(export)
    async with page.expect_download() as started:
        await page.get_by_role("button", name=re.compile("download", re.IGNORECASE)).click()
    download = await started.value
    saved = Path(await download.path())
    assert shopper.email in await asyncio.to_thread(saved.read_text, "utf-8")
    await page.goto(rights)
    await note.get_by_text("You downloaded your data on").wait_for()

    # A correction with a hostile value: a field error, not a page error.
    await page.get_by_label("Correct my data").check()
    await page.get_by_label("Correct phone number").fill("+44\x07" + "7" * 9_996)
    await page.get_by_role("button", name="Send my request").click()
    phone_error = page.locator("#phone-error")
    await phone_error.get_by_text("Enter a valid phone number").wait_for()
    assert await page.get_by_label("Correct phone number").get_attribute("aria-invalid") == "true"
    assert await page.locator("#page-error").inner_text() == ""
    assert await page.locator("#requests > li").count() == 1
    await check_page(page, "rights-field-error", AXE, screenshot=False)
    shopper.watch.assert_clean()
    await shopper.context.close()


async def test_the_rights_page_speaks_french(server: LiveServer, browser: Any) -> None:
    shopper = await signed_in_shopper(server, browser, "romane.droits@example.com")
    page = shopper.page
    await page.goto(f"{shopper.centre}/rights?lang=fr")
    assert await page.locator("html").get_attribute("lang") == "fr"
    await page.get_by_role("heading", name="Vos demandes sur vos données").wait_for()
    await page.locator("#none").wait_for()
    await page.get_by_role("button", name="Envoyer ma demande").click()
    await page.get_by_text("Choisissez ce que vous souhaitez que nous fassions.").wait_for()
    await check_page(page, "rights-fr", AXE, screenshot=False)
    shopper.watch.assert_clean()
    await shopper.context.close()


CREATE_PROCESSOR = """mutation C($input: ProcessorInput!) { createProcessor(input: $input) {
  __typename ... on ProcessorSaved { processor { id } } } }"""
SHARE = """mutation S($p: ID!, $c: [ID!]!) { shareWithProcessor(processorId: $p,
  categories: ["contact.phone"], purpose: "service", customerIds: $c) {
  __typename ... on DataShared { shared } } }"""
CUSTOMER_ID = """query Q($e: String!) { customers(purpose: LEGAL, first: 1, search: $e) {
  edges { node { id } } } }"""
SUBMIT = """mutation M { submitRightsRequest(kind: RECTIFICATION, details: "new number",
  changes: { phone: "+44 20 7946 0999" }) { ... on RightsRequestReceipt { id } } }"""
VERIFY = """mutation V($id: ID!, $code: String!) {
  verifyRightsRequest(id: $id, code: $code) { __typename } }"""
CUSTOMER_LOGIN = """mutation L($e: String!, $p: String!) { login(email: $e, password: $p) {
  ... on LoginSuccess { token } } }"""


async def test_a_correction_shows_the_recipients_told_and_their_answers(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    shopper = await signed_in_shopper(server, browser, "remy.recipients@example.com")
    page = shopper.page
    # legal shares the shopper's phone number with a courier
    legal = await employee_token(
        server, settings.database_url, "lee.legal@staff.example.com", "legal"
    )
    processor = {
        "name": "Relay Couriers",
        "contact": "dpo@relay.example",
        "country": "FR",
        "contractReference": "DPA-RELAY-1",
        "purposes": ["service"],
        "categories": ["contact.phone"],
        "activeFrom": "2026-01-01T00:00:00Z",
    }
    created = await as_staff(server, legal, CREATE_PROCESSOR, {"input": processor})
    relay = created["createProcessor"]["processor"]["id"]
    found = await as_staff(server, legal, CUSTOMER_ID, {"e": shopper.email})
    customer_id = found["customers"]["edges"][0]["node"]["id"]
    shared = await as_staff(server, legal, SHARE, {"p": relay, "c": [customer_id]})
    assert shared["shareWithProcessor"]["shared"] == 1
    # the shopper corrects the number; the officer approves and fulfils it
    token = await api(server, CUSTOMER_LOGIN, {"e": shopper.email, "p": shopper.password})
    customer = token["login"]["token"]
    request_id = (await api(server, SUBMIT, token=customer))["submitRightsRequest"]["id"]
    mail = await server.sink.wait_for(
        to=shopper.email, subject="Confirm your request about your personal data"
    )
    match = CODE.search(body_text(mail))
    assert match
    await api(server, VERIFY, {"id": request_id, "code": match.group(2)}, token=customer)
    officer = await employee_token(server, settings.database_url, OFFICER_EMAIL, "privacy_officer")
    await as_staff(server, officer, REVIEW, {"id": request_id})
    fulfilled = await as_staff(server, officer, FULFIL, {"id": request_id})
    assert fulfilled["fulfillRightsRequest"]["status"] == "NOTIFYING"
    # the page says the work is done, who was told, and that their answer is awaited
    await page.goto(f"{shopper.centre}/rights")
    item = page.locator(f"#request-{request_id}")
    await item.get_by_text("waiting for the recipients of your data to confirm").wait_for()
    told = item.locator(f"#recipients-{request_id}")
    assert "Relay Couriers: told" in await told.inner_text()
    await check_page(page, "rights-recipients", AXE, screenshot=False)
    shopper.watch.assert_clean()
    await shopper.context.close()
