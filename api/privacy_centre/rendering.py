"""A page as HTML: its template (templates/NAME.html) inside the layout, with the message
catalogue of its language applied. Placeholders: `{{ key }}` is a catalogue message,
`{{ $name }}` a value, `{{ !name }}` markup built here; messages and values are escaped.
Everything the page's module needs (its messages, the addresses of the other pages) is in a
JSON data block, which the Content-Security-Policy allows as it runs nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from urllib.parse import urlencode

from api.customers.countries import ISO_3166_ALPHA2
from api.mail.links import Page
from api.privacy_centre.catalogue import LANGUAGES, fill, messages
from api.privacy_centre.pages import PAGES, CentrePage
from api.settings import Settings

PLACEHOLDER = re.compile(r"\{\{\s*([$!]?)([A-Za-z0-9_.-]+)\s*\}\}")
TEMPLATES = Path(__file__).parent / "templates"
SIGNED_OUT_NAV = (Page.SIGN_IN, Page.SIGN_UP, Page.PRIVACY_POLICY)
SIGNED_IN_NAV = (
    Page.PROFILE,
    Page.CONSENTS,
    Page.RIGHTS,
    Page.ACCESS_LOG,
    Page.PRIVACY_POLICY,
)
"""The navigation's order; a page is in it once it is built (pages.PAGES), with its
`nav.NAME` message."""


@cache
def template(name: str) -> str:
    return (TEMPLATES / f"{name}.html").read_text("utf-8")


def render(
    text: str,
    *,
    catalogue: Mapping[str, str],
    values: Mapping[str, str],
    markup: Mapping[str, str],
) -> str:
    """`text` with its placeholders filled; a KeyError names one that has nothing."""

    def one(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind == "$":
            return escape(values[name])
        if kind == "!":
            return markup[name]
        return escape(catalogue[name])

    return PLACEHOLDER.sub(one, text)


@dataclass(frozen=True, slots=True)
class Reader:
    """Who the page is for: their language (and whether the address chose it, so links
    keep it), whether they are signed in, and the page's own query (the language links
    keep it: the verification page's token, say)."""

    lang: str
    lang_in_query: bool
    signed_in: bool
    query: Mapping[str, str]


def base_path(settings: Settings) -> str:
    return settings.privacy_centre_path.rstrip("/")


def href(settings: Settings, page: Page, reader: Reader) -> str:
    """A link to another page: the shop's own address for it (CUSTOS_PAGE_URLS), else ours,
    keeping a language chosen in the address."""
    own = settings.page_urls.get(page.value)
    if own is not None:
        return own
    path = f"{base_path(settings)}/{page.value}"
    return f"{path}?{urlencode({'lang': reader.lang})}" if reader.lang_in_query else path


def _nav(settings: Settings, current: CentrePage, reader: Reader) -> str:
    catalogue = messages(reader.lang)
    items = []
    for page in SIGNED_IN_NAV if reader.signed_in else SIGNED_OUT_NAV:
        if page.value not in PAGES:
            continue
        here = ' aria-current="page"' if page is current.page else ""
        items.append(
            f'<li><a href="{escape(href(settings, page, reader))}"{here}>'
            f"{escape(catalogue['nav.' + page.value])}</a></li>"
        )
    if reader.signed_in:
        items.append(
            '<li><button type="button" class="link-button" id="sign-out">'
            f"{escape(catalogue['nav.sign-out'])}</button></li>"
        )
    return f"<ul>{''.join(items)}</ul>"


def _languages(reader: Reader) -> str:
    links = []
    for lang in LANGUAGES:
        query = urlencode({**reader.query, "lang": lang})
        here = ' aria-current="true"' if lang == reader.lang else ""
        links.append(
            f'<li><a href="?{escape(query)}" lang="{lang}" hreflang="{lang}"{here}>'
            f"{escape(messages(lang)['lang.name'])}</a></li>"
        )
    return f"<ul>{''.join(links)}</ul>"


def _brand(settings: Settings) -> str:
    name = escape(settings.shop_name)
    if settings.shop_logo_url:
        return f'<img class="logo" src="{escape(settings.shop_logo_url)}" alt="{name}">'
    return f'<span class="shop-name">{name}</span>'


def _support(settings: Settings, catalogue: Mapping[str, str]) -> str:
    address = settings.shop_support_email
    if not address:
        return ""
    return (
        f"<p>{escape(catalogue['footer.support'])} "
        f'<a href="mailto:{escape(address)}">{escape(address)}</a></p>'
    )


def _countries() -> str:
    return "".join(f'<option value="{code}">{code}</option>' for code in sorted(ISO_3166_ALPHA2))


def _config(settings: Settings, reader: Reader) -> str:
    """The page module's configuration, as JSON safe inside a <script> element."""
    pages = {page.value: href(settings, page, reader) for page in Page}
    data = {"lang": reader.lang, "messages": messages(reader.lang), "pages": pages}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _scripts(settings: Settings, page: CentrePage, reader: Reader) -> str:
    """The page's JSON data block and its module."""
    static = escape(f"{base_path(settings)}/static/{page.name}.js")
    return (
        f'<script type="application/json" id="custos-config">{_config(settings, reader)}</script>\n'
        f'<script type="module" src="{static}"></script>'
    )


def layout(
    settings: Settings,
    reader: Reader,
    *,
    name: str,
    title: str,
    content: str,
    nav: str,
    scripts: str = "",
    head: str = "",
) -> str:
    """`content` (markup) inside the layout: the banner with the shop's name or logo and
    `nav`, the footer with the support address and the language links. `title` is the
    page's own (a message), `scripts` and `head` markup for the head (none by default: a
    page served without JavaScript, api/privacy_centre/standalone.py)."""
    catalogue = messages(reader.lang)
    base = base_path(settings)
    values = {
        "lang": reader.lang,
        "title": fill(catalogue["page.title"], {"page": title, "shop": settings.shop_name}),
        "static": f"{base}/static",
        "theme": f"{base}/theme.css",
        "page": name,
    }
    markup = {
        "content": content,
        "head": head,
        "scripts": scripts,
        "brand": _brand(settings),
        "nav": nav,
        "support": _support(settings, catalogue),
        "languages": _languages(reader),
    }
    return render(template("layout"), catalogue=catalogue, values=values, markup=markup)


def render_page(settings: Settings, page: CentrePage, reader: Reader) -> str:
    catalogue = messages(reader.lang)
    values = {f"page.{p.value}": href(settings, p, reader) for p in Page}
    markup = {"countries": _countries()}
    content = render(template(page.name), catalogue=catalogue, values=values, markup=markup)
    return layout(
        settings,
        reader,
        name=page.name,
        title=catalogue[page.title],
        content=content,
        nav=_nav(settings, page, reader),
        scripts=_scripts(settings, page, reader),
    )


def known_page(name: str) -> CentrePage | None:
    return PAGES.get(name)
