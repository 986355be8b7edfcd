"""Editing the profile in the privacy centre, in a real browser against a real server that
mails to a sink the test reads: a signed-in customer corrects the phone and the address,
changes the password (other sessions end, the old password stops working) and the email
address (the new one waits, as `pendingEmail`, for the link mailed to it). The API's typed
errors, hostile input included, are marked on the fields they name, never a page error;
every state passes axe-core at desktop and 375 px width."""

from __future__ import annotations

from typing import Any

from tests.browser.harness import (
    AXE,
    DESKTOP,
    LiveServer,
    Shopper,
    Watch,
    body_text,
    check_page,
    links,
    signed_in_shopper,
)

PASSWORD = "a lantern in the orchard"
NEW_PASSWORD = "seven quiet herons at dawn"
FORM_CHECK = "Please correct the fields marked below."
REFUSED = (
    "This is too long, or holds characters that are not allowed here (such as control "
    "characters). Please correct it."
)


async def _profile_loaded(page: Any) -> None:
    await page.locator("#profile").wait_for()
    await page.locator("#editing").wait_for()


async def _focused(page: Any) -> str:
    focused: str = await page.evaluate("document.activeElement.id")
    return focused


async def _sign_in(page: Any, centre: str, email: str, password: str) -> None:
    await page.goto(f"{centre}/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def _field_error(page: Any, field_id: str) -> str:
    """The error shown on field `field_id`, once it is marked invalid."""
    note = page.locator(f'[id="{field_id}-error"]')
    await note.wait_for()
    field = page.locator(f'[id="{field_id}"]')
    assert await field.get_attribute("aria-invalid") == "true", field_id
    text: str = await note.inner_text()
    return text


def _log_free_of(server: LiveServer, *values: str) -> None:
    """The server's log holds none of the customer's data."""
    log = server.log.read_text("utf-8", errors="replace")
    for value in values:
        assert value not in log, "personal data in the server's log"


async def _no_page_error(shopper: Shopper) -> None:
    assert await shopper.page.locator("#page-error").inner_text() == ""
    assert shopper.watch.console_errors == []


async def test_the_phone_and_the_address_are_corrected_and_bad_input_is_marked(
    server: LiveServer, browser: Any
) -> None:
    shopper = await signed_in_shopper(server, browser, "sasha.contact@example.com")
    page = shopper.page
    await _profile_loaded(page)
    contact = page.locator("#contact-form")
    phone = contact.get_by_label("Phone number")
    save = contact.get_by_role("button", name="Save phone number and address")
    # the form holds what `me` holds
    assert await phone.input_value() == "+442079460321"
    assert await contact.get_by_label("Street and number").input_value() == "1 Orchard Lane"
    assert await contact.get_by_label("Postal code").input_value() == "BA1 1AA"
    assert await contact.get_by_label("Country").input_value() == "GB"
    await check_page(page, "profile", AXE)

    # A phone number the API refuses is marked on its field, which takes the focus; nothing
    # is saved.
    await phone.fill("+44 20 7946")
    await save.click()
    assert await _field_error(page, "contact-phone") == (
        "Enter a valid phone number, with its country code."
    )
    assert await page.locator("#contact-alert").inner_text() == FORM_CHECK
    assert await _focused(page) == "contact-phone"
    assert await page.locator("#contact-done").is_hidden()
    await check_page(page, "profile-contact-error", AXE, screenshot=False)
    await page.reload()
    await _profile_loaded(page)
    assert await page.locator("#phone").inner_text() == "+442079460321"
    assert await phone.input_value() == "+442079460321"

    # A valid one is saved: said in the status message, which takes the focus; the view
    # shows it at once and after a reload, as the API normalised it.
    await phone.fill("+33 1 42 68 53 00")
    await save.click()
    done = page.locator("#contact-done")
    await done.wait_for()
    assert await done.inner_text() == "Your phone number and address are saved."
    assert await _focused(page) == "contact-done"
    assert await page.locator("#phone").inner_text() == "+33142685300"
    await check_page(page, "profile-contact-saved", AXE, screenshot=False)
    await page.reload()
    await _profile_loaded(page)
    assert await page.locator("#phone").inner_text() == "+33142685300"
    assert await phone.input_value() == "+33142685300"

    # The address, sent from the keyboard (Enter in a field submits the form).
    await contact.get_by_label("Street and number").fill("5 Rue de Rivoli")
    await contact.get_by_label("Flat, building (optional)").fill("Bâtiment B")
    await contact.get_by_label("Postal code").fill("75001")
    await contact.get_by_label("Country").select_option("FR")
    await contact.get_by_label("Town or city").fill("Paris")
    await contact.get_by_label("Town or city").press("Enter")
    await done.wait_for()
    assert await _focused(page) == "contact-done"
    shown = "5 Rue de Rivoli\nBâtiment B\n75001 Paris\nFrance"
    assert await page.locator("#address").inner_text() == shown
    await page.reload()
    await _profile_loaded(page)
    assert await page.locator("#address").inner_text() == shown
    assert await contact.get_by_label("Country").input_value() == "FR"

    # Hostile input (control characters, 10,000 characters, NUL, which Playwright can put
    # in a field though no keyboard types it): refused by the API before anything runs,
    # marked on each field it names, never a page error.
    await phone.fill("+33 1 42\x07 68 53 00")
    await contact.get_by_label("Street and number").fill("A" * 10_000)
    await contact.get_by_label("Flat, building (optional)").fill("B\x00")
    await contact.get_by_label("Town or city").fill("Paris\x1b[2J")
    await contact.get_by_label("Postal code").fill("7" * 10_000)
    await save.click()
    for field in ("phone", "address.line1", "address.line2", "address.city", "address.postalCode"):
        assert await _field_error(page, f"contact-{field}") == REFUSED
    assert await page.locator("#contact-alert").inner_text() == FORM_CHECK
    assert await _focused(page) == "contact-phone"
    await _no_page_error(shopper)
    await check_page(page, "profile-contact-hostile", AXE, screenshot=False)
    # within the API's limits for text but over the address's own: the field's message
    await phone.fill("+33 1 42 68 53 00")
    await contact.get_by_label("Flat, building (optional)").fill("")
    await contact.get_by_label("Town or city").fill("Paris")
    await contact.get_by_label("Postal code").fill("75001")
    await contact.get_by_label("Street and number").fill("A" * 500)
    await save.click()
    assert await _field_error(page, "contact-address.line1") == "Enter the street and number."
    assert await page.locator("#contact-phone-error").inner_text() == ""
    await _no_page_error(shopper)
    await page.reload()
    await _profile_loaded(page)
    assert await page.locator("#phone").inner_text() == "+33142685300"
    assert await page.locator("#address").inner_text() == shown
    _log_free_of(server, shopper.email, "+33142685300", "Rivoli")
    shopper.watch.assert_clean()
    await shopper.context.close()


async def test_the_password_is_changed_and_other_sessions_end(
    server: LiveServer, browser: Any
) -> None:
    email = "kit.password@example.com"
    shopper = await signed_in_shopper(server, browser, email)
    page, centre = shopper.page, shopper.centre
    await _profile_loaded(page)
    # the same customer, signed in on another device
    elsewhere = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    other = await elsewhere.new_page()
    other_watch = Watch(server.url)
    other_watch.attach(other)
    await _sign_in(other, centre, email, PASSWORD)
    await other.wait_for_url(f"{centre}/profile")

    form = page.locator("#password-form")
    current = form.get_by_label("Current password")
    new = form.get_by_label("New password")
    change = form.get_by_role("button", name="Change password")
    # the page says what the change does to the other sessions
    intro = await page.locator("#password-title + p").inner_text()
    assert "signs you out on every other device" in intro
    assert "you stay signed in here" in intro

    # A wrong current password is marked on its field.
    await current.fill("not my password at all")
    await new.fill(NEW_PASSWORD)
    await change.click()
    assert await _field_error(page, "password-current") == "This is not your current password."
    assert await _focused(page) == "password-current"
    await check_page(page, "profile-password-error", AXE, screenshot=False)
    # A weak new password is marked on its field, in the catalogue's words.
    await current.fill(PASSWORD)
    await new.fill("short")
    await change.click()
    assert "8 to 256 characters" in await _field_error(page, "password-new")
    assert await page.locator("#password-current-error").inner_text() == ""
    assert await _focused(page) == "password-new"
    # 10,000 characters: a field error, never a page error
    await new.fill("x" * 10_000)
    await change.click()
    assert await _field_error(page, "password-new") == "Enter a password of 8 to 256 characters."
    await _no_page_error(shopper)
    # nothing changed: the other session is still signed in
    await other.reload()
    await other.locator("#profile").wait_for()
    assert other.url == f"{centre}/profile"

    # The change: said in the status message, which takes the focus; the form is emptied.
    await current.fill(PASSWORD)
    await new.fill(NEW_PASSWORD)
    await change.click()
    done = page.locator("#password-done")
    await done.wait_for()
    assert await done.inner_text() == "Your password is changed. Other sessions signed out: 1."
    assert await _focused(page) == "password-done"
    assert await current.input_value() == ""
    assert await new.input_value() == ""
    await check_page(page, "profile-password-done", AXE, screenshot=False)
    await server.sink.wait_for(to=email, subject="Your password was changed")
    # the other session ended; this one goes on
    await other.goto(f"{centre}/profile")
    assert other.url == f"{centre}/sign-in?next=profile"
    await page.reload()
    await _profile_loaded(page)
    assert page.url == f"{centre}/profile"

    # Signed out, the old password fails and the new one works.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{centre}/sign-in?signed-out=1")
    await _sign_in(page, centre, email, PASSWORD)
    await page.get_by_text("The email or password is wrong.").wait_for()
    await _sign_in(page, centre, email, NEW_PASSWORD)
    await page.wait_for_url(f"{centre}/profile")
    await _profile_loaded(page)
    _log_free_of(server, email, PASSWORD, NEW_PASSWORD)
    shopper.watch.assert_clean()
    other_watch.assert_clean()
    await elsewhere.close()
    await shopper.context.close()


async def test_the_email_address_changes_once_the_new_one_is_confirmed(
    server: LiveServer, browser: Any
) -> None:
    old, new_address = "noor.before@example.com", "noor.after@example.com"
    shopper = await signed_in_shopper(server, browser, old)
    page, centre = shopper.page, shopper.centre
    await _profile_loaded(page)
    form = page.locator("#change-email-form")
    new = form.get_by_label("New email address")
    password = form.get_by_label("Current password")
    send = form.get_by_role("button", name="Send the confirmation link")
    assert await page.locator("#change-email-pending").is_hidden()

    # Hostile addresses (a control character, 10,000 characters): marked on the field.
    for hostile in ("noor\x07@example.com", "n" * 10_000 + "@example.com"):
        await new.fill(hostile)
        await password.fill(PASSWORD)
        await send.click()
        assert await _field_error(page, "change-email-new") == REFUSED
        assert await _focused(page) == "change-email-new"
        await _no_page_error(shopper)
    await check_page(page, "profile-email-error", AXE, screenshot=False)
    # not an address
    await new.fill("noor at example dot com")
    await send.click()
    assert await _field_error(page, "change-email-new") == "Enter a valid email address."
    # the address it already is
    await new.fill(old.upper())
    await send.click()
    assert await _field_error(page, "change-email-new") == "This is already your email address."
    # a wrong current password
    await new.fill(new_address)
    await password.fill("not my password at all")
    await send.click()
    assert await _field_error(page, "change-email-password") == (
        "This is not your current password."
    )
    # nothing changed
    await page.reload()
    await _profile_loaded(page)
    assert await page.locator("#email").inner_text() == old
    assert await page.locator("#pending-email").is_hidden()

    # The change: a link goes to the new address, which is pending until it is opened.
    await new.fill(new_address)
    await password.fill(PASSWORD)
    await send.click()
    done = page.locator("#change-email-done")
    await done.wait_for()
    assert (await done.inner_text()).startswith(f"We sent a link to {new_address}.")
    assert await _focused(page) == "change-email-done"
    assert await page.locator("#email").inner_text() == old
    assert await page.locator("#pending-email").inner_text() == (
        f"Changing to {new_address} once that address is confirmed"
    )
    pending = page.locator("#change-email-pending")
    assert await pending.inner_text() == (
        f"Waiting for confirmation: open the link we sent to {new_address}. Until then, "
        f"sign in with {old}. To get a new link, or to use another address, send it below."
    )
    await check_page(page, "profile-email-pending", AXE, screenshot=False)
    await server.sink.wait_for(to=old, subject="Your account's email address is being changed")
    mail = await server.sink.wait_for(to=new_address, subject="Confirm your email address")
    [link] = [u for u in links(body_text(mail)) if "/verify-email" in u]
    assert link.startswith(f"{centre}/verify-email?token=")

    # The link confirms it; the profile then shows the new address, confirmed.
    await page.goto(link)
    await page.get_by_text("Your email address is confirmed").wait_for()
    await page.goto(f"{centre}/profile")
    await _profile_loaded(page)
    assert await page.locator("#email").inner_text() == new_address
    assert await page.locator("#email-state").inner_text() == "(confirmed)"
    assert await page.locator("#pending-email").is_hidden()
    assert await pending.is_hidden()
    await check_page(page, "profile-email-confirmed", AXE, screenshot=False)
    # and signing in uses it
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{centre}/sign-in?signed-out=1")
    await _sign_in(page, centre, new_address, PASSWORD)
    await page.wait_for_url(f"{centre}/profile")
    _log_free_of(server, old, new_address, PASSWORD)
    shopper.watch.assert_clean()
    await shopper.context.close()


async def test_a_pending_email_change_is_cancelled_from_the_page(
    server: LiveServer, browser: Any
) -> None:
    old, mistyped = "ines.before@example.com", "ines.aftr@example.com"
    shopper = await signed_in_shopper(server, browser, old)
    page = shopper.page
    await _profile_loaded(page)
    cancel = page.get_by_role("button", name="Cancel this change")
    # nothing pending: no cancel button
    assert await cancel.is_hidden()
    # a change to a mistyped address
    form = page.locator("#change-email-form")
    await form.get_by_label("New email address").fill(mistyped)
    await form.get_by_label("Current password").fill(PASSWORD)
    await form.get_by_role("button", name="Send the confirmation link").click()
    await page.locator("#change-email-done").wait_for()
    mail = await server.sink.wait_for(to=mistyped, subject="Confirm your email address")
    [link] = [u for u in links(body_text(mail)) if "/verify-email" in u]
    # when the customer cancels it
    await cancel.click()
    done = page.locator("#cancel-email-done")
    await done.wait_for()
    # then the page says so, shows no pending change, and the mailed link moves nothing
    assert await done.inner_text() == (
        f"The change is cancelled: the link we sent no longer works, and your address stays {old}."
    )
    assert await _focused(page) == "cancel-email-done"
    assert await page.locator("#pending-email").is_hidden()
    assert await page.locator("#change-email-pending").is_hidden()
    assert await page.locator("#change-email-done").is_hidden()
    assert await cancel.is_hidden()
    await check_page(page, "profile-email-cancelled", AXE, screenshot=False)
    await page.goto(link)
    await page.get_by_text("This link is not valid").wait_for()
    await page.goto(f"{shopper.centre}/profile")
    await _profile_loaded(page)
    assert await page.locator("#email").inner_text() == old
    assert await page.locator("#pending-email").is_hidden()
    await _no_page_error(shopper)
    _log_free_of(server, old, mistyped)
    shopper.watch.assert_clean()
    await shopper.context.close()
