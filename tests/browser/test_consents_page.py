"""The consents page (the preference centre) and accepting a material policy change, in a
real browser against a real server: a customer switches a consent off with the keyboard,
the change survives a reload, the history records it with its source and the API agrees;
the browser's Global Privacy Control signal is recorded as an opt-out of personalised
advertising and shown as such; a pending material policy version is accepted from the
privacy policy page and stays accepted. Every state passes axe-core at 1280 and 375 px."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.settings import Settings
from tests.browser.harness import (
    AXE,
    LiveServer,
    as_staff,
    check_page,
    employee_token,
    live_server,
    require_browser,
    signed_in_shopper,
)

CONSENTS = "{ me { consents { purpose granted state source } } }"
HISTORY = "{ me { consentHistory { purpose granted source policyVersion } } }"
PENDING = "{ me { pendingPolicy { version } } }"
SUMMARY = "We now use your browsing to choose the marketing email you get."
PUBLISH = """mutation($at: DateTime!, $summary: String!) {
  publishPolicy(version: "2", effectiveAt: $at, material: true, summary: $summary,
    text: "The policy, version 2.",
    changedPurposes: ["marketing.email"]) { __typename ... on InputError { code field } } }"""
LEGAL_EMAIL = "lena.legal@staff.example.com"


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The shared server, with no notice period for material policy changes, so that a
    version published in the test takes effect seconds later."""
    require_browser()
    with live_server(
        settings.database_url, tmp_path_factory.mktemp("consents"), CUSTOS_POLICY_NOTICE_DAYS="0"
    ) as live:
        yield live
    print("\naxe-core per page:", *(f"  {k}: {v}" for k, v in AXE.items()), sep="\n")


async def as_session(
    server: LiveServer, context: Any, query: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """`query` over HTTP with the browser context's session cookie (what the page holds)."""
    [cookie] = [c for c in await context.cookies() if c["name"] == "__Host-custos_session"]
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        answer = await client.post(
            "/graphql",
            json={"query": query},
            headers={"Cookie": f"{cookie['name']}={cookie['value']}", **(headers or {})},
        )
    body = answer.json()
    assert answer.status_code == 200, body
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


async def test_a_customer_withdraws_a_consent_with_the_keyboard_and_it_stays_withdrawn(
    server: LiveServer, browser: Any
) -> None:
    shopper = await signed_in_shopper(server, browser, "cleo.consents@example.com")
    page = shopper.page
    # the signed-in navigation leads to the page
    await page.get_by_role("link", name="Your consents").click()
    await page.wait_for_url(f"{shopper.centre}/consents")
    email = page.get_by_role("switch", name="Marketing email")
    await email.wait_for()
    assert await email.get_attribute("aria-checked") == "true"  # given at sign-up
    assert "(at sign-up)" in await page.locator("#state-marketing-email").inner_text()
    # the other consents were never asked: off; the other legal bases have no switch
    assert await page.get_by_role("switch").count() == 4
    ads = page.get_by_role("switch", name="Personalised advertising")
    assert await ads.get_attribute("aria-checked") == "false"
    others = page.locator("#other > li")
    assert await others.count() == 4
    assert await others.locator("button").count() == 0
    assert "Legal basis: a legal obligation" in await others.nth(3).inner_text()
    assert "Legal basis: our legitimate interest" in await others.nth(2).inner_text()
    assert "Legal basis: your consent" in await page.locator("#choices > li").first.inner_text()
    await check_page(page, "consents", AXE)

    # Space on the focused switch withdraws; the status says so
    await email.focus()
    await page.keyboard.press("Space")
    await page.get_by_role("status").filter(has_text="Marketing email is now off.").wait_for()
    assert await email.get_attribute("aria-checked") == "false"
    assert await page.evaluate("document.activeElement.id") == "switch-marketing-email"
    await check_page(page, "consents-changed", AXE, screenshot=False)

    # after a reload it is still off, and the history shows the withdrawal first
    await page.reload()
    await email.wait_for()
    assert await email.get_attribute("aria-checked") == "false"
    assert "(on this page)" in await page.locator("#state-marketing-email").inner_text()
    history = page.locator("#history > li")
    assert await history.count() == 2
    newest = await history.first.inner_text()
    assert "Marketing email: withdrawn" in newest
    assert "on this page" in newest
    assert "version " in newest
    assert "Marketing email: given" in await history.nth(1).inner_text()
    assert "at sign-up" in await history.nth(1).inner_text()

    # the API agrees, over HTTP with the page's session
    consents = (await as_session(server, shopper.context, CONSENTS))["me"]["consents"]
    state = {c["purpose"]: c for c in consents}
    assert state["marketing.email"] == {
        "purpose": "marketing.email",
        "granted": False,
        "state": "WITHDRAWN",
        "source": "preference_centre",
    }
    events = (await as_session(server, shopper.context, HISTORY))["me"]["consentHistory"]
    assert [(e["granted"], e["source"]) for e in events] == [
        (False, "preference_centre"),
        (True, "registration"),
    ]

    # Enter gives it again
    await email.focus()
    await page.keyboard.press("Enter")
    await page.get_by_role("status").filter(has_text="Marketing email is now on.").wait_for()
    assert await email.get_attribute("aria-checked") == "true"
    shopper.watch.assert_clean()
    await shopper.context.close()


async def test_the_global_privacy_control_signal_is_honoured_and_explained(
    server: LiveServer, browser: Any
) -> None:
    shopper = await signed_in_shopper(
        server, browser, "gale.gpc@example.com", consents=("marketing.email", "marketing.ads")
    )
    page = shopper.page
    # the browser sends the signal from now on (every request of the context)
    await shopper.context.set_extra_http_headers({"Sec-GPC": "1"})
    await page.goto(f"{shopper.centre}/consents")
    ads = page.get_by_role("switch", name="Personalised advertising")
    await ads.wait_for()
    assert await ads.get_attribute("aria-checked") == "false"
    notice = page.locator("#gpc")
    await notice.wait_for()
    text = await notice.inner_text()
    assert "Your browser sent the Global Privacy Control signal and we honoured it" in text
    assert "never used for personalised advertising" in text
    newest = await page.locator("#history > li").first.inner_text()
    assert "Personalised advertising: withdrawn" in newest
    assert "Global Privacy Control signal" in newest
    # marketing email is left alone
    email = page.get_by_role("switch", name="Marketing email")
    assert await email.get_attribute("aria-checked") == "true"
    await check_page(page, "consents-gpc", AXE, screenshot=False)

    # Switching advertising on while sending the signal: the API records the choice (an
    # explicit choice is respected, the signal is not applied over it again), and the page
    # says what the signal still does
    await ads.focus()
    await page.keyboard.press("Space")
    status = page.get_by_role("status").filter(has_text="Personalised advertising is now on.")
    await status.wait_for()
    assert "Global Privacy Control signal still keeps" in await status.inner_text()
    assert await ads.get_attribute("aria-checked") == "true"
    await page.reload()
    await ads.wait_for()
    assert await ads.get_attribute("aria-checked") == "true"
    await page.locator("#gpc-regranted").wait_for()
    await check_page(page, "consents-gpc-regranted", AXE, screenshot=False)
    consents = await as_session(server, shopper.context, CONSENTS, {"Sec-GPC": "1"})
    state = {c["purpose"]: c for c in consents["me"]["consents"]}
    assert (state["marketing.ads"]["granted"], state["marketing.ads"]["source"]) == (
        True,
        "preference_centre",
    )
    events = (await as_session(server, shopper.context, HISTORY))["me"]["consentHistory"]
    ads_events = [(e["granted"], e["source"]) for e in events if e["purpose"] == "marketing.ads"]
    assert ads_events == [(True, "preference_centre"), (False, "gpc"), (True, "registration")]
    shopper.watch.assert_clean()
    await shopper.context.close()


async def _publish_material_version(server: LiveServer, token: str, at: datetime) -> None:
    """Publish version 2 (material, changing marketing.email)."""
    variables = {"at": at.isoformat(), "summary": SUMMARY}
    published = await as_staff(server, token, PUBLISH, variables)
    assert published["publishPolicy"]["__typename"] == "PolicyPublished", published


async def test_a_pending_material_change_is_accepted_from_the_policy_page(
    server: LiveServer, browser: Any, settings: Settings
) -> None:
    shopper = await signed_in_shopper(server, browser, "paz.policy@example.com")
    page = shopper.page
    token = await employee_token(server, settings.database_url, LEGAL_EMAIL, "legal")
    effective = datetime.now(UTC) + timedelta(seconds=3)
    await _publish_material_version(server, token, effective)
    # once it is in effect, the customer (registered before it) has it to accept
    deadline = time.monotonic() + 20
    while (await as_session(server, shopper.context, PENDING))["me"]["pendingPolicy"] is None:
        assert time.monotonic() < deadline, "version 2 never became pending"
        await asyncio.sleep(0.5)

    await page.goto(f"{shopper.centre}/privacy-policy")
    pending = page.locator("#pending")
    await pending.wait_for()
    text = await pending.inner_text()
    assert "Version 2, in effect since" in text
    assert SUMMARY in text
    assert "no longer counts: Marketing email" in text
    await page.locator("#policy").wait_for()
    await check_page(page, "privacy-policy-pending", AXE)

    await page.get_by_role("button", name="Accept this version").click()
    accepted = page.get_by_role("status").filter(has_text="you accepted version 2")
    await accepted.wait_for()
    assert await pending.is_hidden()
    assert await page.evaluate("document.activeElement.id") == "accepted"
    await check_page(page, "privacy-policy-accepted", AXE, screenshot=False)
    assert (await as_session(server, shopper.context, PENDING))["me"]["pendingPolicy"] is None
    await page.reload()
    await page.locator("#policy").wait_for()
    await page.wait_for_load_state("networkidle")
    assert await pending.is_hidden()

    # the consent the change named is to be given again: the consents page says so
    await page.goto(f"{shopper.centre}/consents")
    email = page.get_by_role("switch", name="Marketing email")
    await email.wait_for()
    assert await email.get_attribute("aria-checked") == "false"
    assert "no longer counts" in await page.locator("#state-marketing-email").inner_text()

    # a signed-out reader sees the policy as before, and asks nothing about a customer
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{shopper.centre}/sign-in?signed-out=1")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.post_data or "") if "/graphql" in r.url else None)
    await page.goto(f"{shopper.centre}/privacy-policy")
    await page.locator("#policy").wait_for()
    await page.wait_for_load_state("networkidle")
    assert await pending.is_hidden()
    assert not any("pendingPolicy" in body for body in asked), asked
    shopper.watch.assert_clean()
    await shopper.context.close()


async def test_the_consents_page_speaks_french(server: LiveServer, browser: Any) -> None:
    shopper = await signed_in_shopper(server, browser, "fanny.francais@example.com")
    page = shopper.page
    await page.goto(f"{shopper.centre}/consents?lang=fr")
    email = page.get_by_role("switch", name="E-mails commerciaux")
    await email.wait_for()
    assert await page.get_by_role("heading", level=1).inner_text() == "Vos consentements"
    assert await email.inner_text() == "Activé"
    assert "Base légale : une obligation légale" in await page.locator("#other").inner_text()
    await email.click()
    await (
        page.get_by_role("status")
        .filter(has_text="Consentement retiré : E-mails commerciaux.")
        .wait_for()
    )
    assert "E-mails commerciaux : retiré" in await page.locator("#history > li").first.inner_text()
    await check_page(page, "consents-fr", AXE, screenshot=False)
    shopper.watch.assert_clean()
    await shopper.context.close()
