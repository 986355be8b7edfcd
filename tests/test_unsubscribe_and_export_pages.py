"""The unsubscribe and export download pages in the privacy centre's look
(api/privacy_centre/standalone.py): the centre's layout, style sheets and theme, every word
from the catalogue, the language chosen as the centre chooses it, no script; the behaviour
they prove in tests/test_unsubscribe.py and tests/test_export_download.py is unchanged."""

from __future__ import annotations

import re

import httpx
import pytest

from api.consent.service import may_process
from api.marketing.unsubscribe_http import _what
from api.privacy_centre.catalogue import LANGUAGES, messages
from api.privacy_centre.standalone import CSP
from api.services import Services
from tests.conftest import GQL
from tests.test_export_download import OUR_PAGE, Issued, issued  # noqa: F401 (a fixture)
from tests.test_privacy_centre import TextOnly
from tests.test_unsubscribe import ONE_CLICK, customer_with, flip, token_for, unsubscribe_events

SHOP = "Custos Demo Shop"


def _pattern(message: str) -> re.Pattern[str]:
    """A message whose {params} may be anything."""
    parts = re.split(r"\{\w+\}", message)
    return re.compile(".+".join(re.escape(p) for p in parts), re.DOTALL)


def assert_catalogue_words(html: str, lang: str) -> None:
    """Every text of the page is a message of `lang` (its parameters filled), the shop's
    name or a language's name: no word of the feature's own."""
    catalogue = messages(lang)
    patterns = [_pattern(m) for m in catalogue.values()]
    names = {messages(other)["lang.name"] for other in LANGUAGES}
    words = TextOnly()
    words.feed(html)
    assert words.text
    for text in words.text:
        if text in names or text == SHOP:
            continue
        assert any(p.fullmatch(text) for p in patterns), (lang, text)


def assert_centre_look(response: httpx.Response, lang: str) -> str:
    html = response.text
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["content-language"] == lang
    assert "Accept-Language" in response.headers["vary"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert f'<html lang="{lang}">' in html
    assert '<link rel="stylesheet" href="/privacy/static/centre.css">' in html
    assert '<link rel="stylesheet" href="/privacy/theme.css">' in html
    assert f'<span class="shop-name">{SHOP}</span>' in html
    assert "<script" not in html
    # the banner links to the centre without a referrer; the footer offers each language
    assert re.search(r'<a href="/privacy/sign-in[^"]*" rel="noreferrer">', html)
    for other in LANGUAGES:
        assert f'hreflang="{other}"' in html
    assert_catalogue_words(html, lang)
    return html


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_the_unsubscribe_pages_speak_the_readers_language(
    gql: GQL, services: Services, lang: str
) -> None:
    customer = await customer_with(gql, "marketing.email")
    token = token_for(customer.id)
    catalogue = messages(lang)
    # the browser's language chooses the page's
    opened = await gql.client.get(f"/unsubscribe/{token}", headers={"Accept-Language": lang})
    html = assert_centre_look(opened, lang)
    assert f">{catalogue['unsubscribe.button']}</button>" in html
    assert catalogue["purpose.marketing.email"] in html
    assert token not in html
    assert await may_process(services=services, customer_id=customer.id, purpose="marketing.email")
    # the form posts to the page's own address, `?lang=` kept (what a browser does)
    done = await gql.client.post(f"/unsubscribe/{token}?lang={lang}", data=ONE_CLICK)
    assert done.status_code == 200
    html = assert_centre_look(done, lang)
    assert catalogue["unsubscribe.done.title"] in html
    assert '<div class="success">' in html
    assert not await may_process(
        services=services, customer_id=customer.id, purpose="marketing.email"
    )
    # refusals are in the reader's language too, and change nothing
    refused = await gql.client.get(f"/unsubscribe/{flip(token, 5)}?lang={lang}")
    assert refused.status_code == 400
    assert catalogue["unsubscribe.refused.invalid"].replace("'", "&#x27;") in assert_centre_look(
        refused, lang
    )
    not_confirmed = await gql.client.post(f"/unsubscribe/{token}?lang={lang}", data={"x": "y"})
    assert not_confirmed.status_code == 400
    assert_centre_look(not_confirmed, lang)
    assert [e[0] for e in await unsubscribe_events()] == ["allow", "deny"]


async def test_the_one_click_post_of_a_mail_client_is_answered_in_english(gql: GQL) -> None:
    """RFC 8058: no cookie, no language; the answer is the plain English page."""
    customer = await customer_with(gql, "marketing.email")
    response = await gql.client.post(f"/unsubscribe/{token_for(customer.id)}", data=ONE_CLICK)
    assert response.status_code == 200
    assert "You are unsubscribed" in assert_centre_look(response, "en")


@pytest.mark.parametrize(
    ("query", "headers", "lang"),
    [
        ("lang=fr%00", {}, "en"),
        ("lang=" + "x" * 10_000, {}, "en"),
        ("lang=%ED%A0%80", {}, "en"),  # a lone surrogate, as UTF-8 cannot hold it
        ("&".join(f"k{i}=%01%1b" for i in range(50)), {}, "en"),
        ("", {"Accept-Language": "de;q=" + "9" * 5000}, "en"),
        ("", {"Accept-Language": "\x7f,\x01;q=1, fr;q=0.1"}, "fr"),
    ],
    ids=["nul", "huge", "surrogate", "many-controls", "huge-header", "control-header"],
)
async def test_hostile_language_choices_get_a_page_not_an_error(
    gql: GQL, query: str, headers: dict[str, str], lang: str
) -> None:
    customer = await customer_with(gql, "marketing.email")
    url = f"/unsubscribe/{token_for(customer.id)}?{query}"
    response = await gql.client.get(url, headers=headers)
    assert response.status_code == 200
    html = assert_centre_look(response, lang)
    assert "\x00" not in html
    assert "\x01" not in html
    # at most ten query parameters are carried into the language links
    for link in re.findall(r'href="\?[^"]*"', html):
        assert len(re.findall(r"k\d+=", link)) <= 10


def test_a_purpose_the_catalogue_does_not_name_gets_a_generic_phrase() -> None:
    assert _what("marketing.email").key == "purpose.marketing.email"
    assert _what("no.such.purpose").key == "unsubscribe.purpose.other"


@pytest.mark.parametrize(
    ("lang", "until"),
    [
        ("en", "until 8 January 2026 at 12:00 UTC"),
        ("fr", "jusqu&#x27;au 8 janvier 2026 à 12:00 UTC"),
    ],
)
async def test_the_export_page_speaks_the_readers_language(
    client: httpx.AsyncClient,
    issued: Issued,  # noqa: F811 (the fixture imported above)
    lang: str,
    until: str,
) -> None:
    catalogue = messages(lang)
    page = await client.get(issued.url, params={"lang": lang})
    html = assert_centre_look(page, lang)
    assert until in html
    assert (
        f'<form method="post"><button type="submit">{catalogue["export.button"]}</button>' in html
    )
    # the form's POST keeps our origin (browsers without Sec-Fetch-Site are recognised)
    assert '<meta name="referrer" content="same-origin">' in html
    assert issued.token not in html
    assert issued.email not in html
    gone = await client.get(f"/exports/{'A' * 43}", headers={"Accept-Language": lang})
    assert gone.status_code == 404
    assert catalogue["export.not-found.title"] in assert_centre_look(gone, lang)
    # and the button still downloads the file, once
    pressed = await client.post(f"{issued.url}?lang={lang}", headers=OUR_PAGE)
    assert pressed.json() == issued.document
    used = await client.get(issued.url, params={"lang": lang})
    assert used.status_code == 410
    assert catalogue["export.gone.title"] in assert_centre_look(used, lang)
