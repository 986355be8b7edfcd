"""The privacy centre without a browser (tests/browser/ drives one): the message catalogue
is complete in every language and is the only source of a page's words; the language is
chosen from the address, then the browser; the routes, their redirects and their CSP; the
shop's settings; the files the installed package needs."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from api.privacy_centre.catalogue import LANGUAGES, choose_language, fill, messages
from api.privacy_centre.pages import PAGES
from api.privacy_centre.rendering import PLACEHOLDER, TEMPLATES, Reader, render_page
from api.privacy_centre.routes import CSP
from api.privacy_centre.theme import contrast, theme_css
from api.settings import Settings
from tests.conftest import GQL, login, register, verification_token

PACKAGE = Path(__file__).parents[1] / "api" / "privacy_centre"
STATIC = PACKAGE / "static"
LITERAL = re.compile(r"""["`]([a-z][a-z-]*\.[A-Za-z0-9_.-]+)["`]""")
STRING = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`""")
PROSE = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,}")


def test_every_language_has_the_same_keys() -> None:
    english = set(messages("en"))
    for lang in LANGUAGES:
        assert set(messages(lang)) == english, lang
        assert all(text.strip() for text in messages(lang).values()), lang
        # the same parameters in every translation
        for key, text in messages(lang).items():
            assert set(re.findall(r"\{\w+\}", text)) == set(
                re.findall(r"\{\w+\}", messages("en")[key])
            ), (lang, key)


def test_templates_hold_no_words_of_their_own() -> None:
    english = messages("en")
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text("utf-8")
        for kind, name in PLACEHOLDER.findall(source):
            if not kind:
                assert name in english, f"{path.name}: {name} is not in the catalogue"
        # what is left between tags, once placeholders are gone, is not text
        words = TextOnly()
        words.feed(PLACEHOLDER.sub("", source))
        assert words.text == [], f"{path.name} has words outside the catalogue: {words.text}"


class TextOnly(HTMLParser):
    """The text nodes of a document (not script or style contents)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in {"script", "style"}

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in {"script", "style"}

    def handle_data(self, data: str) -> None:
        if not self._skip and re.search(r"\w", data):
            self.text.append(data.strip())


def test_scripts_take_their_words_from_the_catalogue() -> None:
    english = messages("en")
    for path in STATIC.glob("*.js"):
        source = path.read_text("utf-8")
        # a string that names a message (its first part a namespace of the catalogue's)
        namespaces = {key.split(".")[0] for key in english}
        for key in LITERAL.findall(source):
            if key.split(".")[0] in namespaces:
                assert key in english, f"{path.name}: {key} is not in the catalogue"
        if path.name == "operations.js":  # GraphQL documents, not words for the reader
            continue
        code = "\n".join(line for line in source.splitlines() if not line.strip().startswith("//"))
        prose = [m.group(0) for m in STRING.finditer(code) if PROSE.search(m.group(0))]
        assert prose == [], f"{path.name} has words of its own: {prose}"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("signed_in", [False, True])
def test_every_word_of_a_rendered_page_is_the_catalogues_or_the_shops(
    lang: str, signed_in: bool
) -> None:
    settings = Settings(shop_name="Maison Exemple", shop_support_email="help@shop.example")
    allowed = {*messages(lang).values(), *(messages(other)["lang.name"] for other in LANGUAGES)}
    allowed |= {settings.shop_name, "help@shop.example"}
    for page in PAGES.values():
        names = {"page": messages(lang)[page.title], "shop": settings.shop_name}
        allowed.add(fill(messages(lang)["page.title"], names))
        reader = Reader(lang=lang, lang_in_query=False, signed_in=signed_in, query={})
        html = render_page(settings, page, reader)
        words = TextOnly()
        words.feed(html)
        country_codes = {w for w in words.text if re.fullmatch(r"[A-Z]{2}", w)}  # JS names them
        assert set(words.text) - country_codes <= allowed, page.name
        assert "Maison Exemple" in html
        assert 'href="mailto:help@shop.example"' in html


def test_the_language_comes_from_the_address_then_the_browser() -> None:
    assert choose_language("fr", "en") == ("fr", True)
    assert choose_language("de", "fr-CH, fr;q=0.9") == ("fr", False)
    assert choose_language(None, "de, fr;q=0.5, en;q=0.8") == ("en", False)
    assert choose_language(None, "de, fr;q=0.5") == ("fr", False)
    assert choose_language(None, "fr;q=0, en;q=0.1") == ("en", False)
    assert choose_language(None, "fr;q=nonsense") == ("en", False)
    assert choose_language(None, None) == ("en", False)
    assert choose_language(None, "x" * 10_000) == ("en", False)


async def test_the_root_sends_readers_to_sign_in_or_to_their_profile(
    client: httpx.AsyncClient, gql: GQL
) -> None:
    answer = await client.get("/privacy/")
    assert (answer.status_code, answer.headers["location"]) == (303, "/privacy/sign-in")
    assert (await client.get("/privacy?lang=fr")).headers["location"] == "/privacy/sign-in?lang=fr"
    # a page for the signed-in sends a stranger to sign in first, and back after
    answer = await client.get("/privacy/profile")
    assert answer.headers["location"] == "/privacy/sign-in?next=profile"
    await register(gql)
    await gql(
        "mutation($t: String!) { verifyEmail(token: $t) { __typename } }",
        {"t": await verification_token("jane.doe@example.com")},
    )
    token = await login(gql)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/privacy/", headers=headers)).headers["location"] == (
        "/privacy/profile"
    )
    page = await client.get("/privacy/profile", headers=headers)
    assert page.status_code == 200
    assert 'id="sign-out"' in page.text


async def test_pages_carry_a_strict_csp_and_say_their_language(client: httpx.AsyncClient) -> None:
    for name in PAGES:
        if PAGES[name].signed_in:
            continue
        answer = await client.get(f"/privacy/{name}", headers={"Accept-Language": "fr"})
        assert answer.status_code == 200
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["content-language"] == "fr"
        assert "Accept-Language" in answer.headers["vary"]
        assert answer.headers["cache-control"] == "no-store"
        # no inline script: every script is a module from this site, or JSON data
        for tag in re.findall(r"<script[^>]*>", answer.text):
            assert 'type="module" src="/privacy/static/' in tag or 'type="application/json"' in tag
        assert " style=" not in answer.text
        assert "<style" not in answer.text
    for directive in ("script-src 'self'", "style-src 'self'", "connect-src 'self'"):
        assert directive in CSP
    assert "unsafe" not in CSP
    assert "img-src 'self' data:" in CSP


async def test_a_links_token_stays_out_of_the_pages_markup(client: httpx.AsyncClient) -> None:
    """A reset or verification token is a key to the account for a while: the language
    links keep the page's other parameters, never the token."""
    secret = "k3y-0f-the-acc0unt"
    for name in ("reset-password", "verify-email"):
        answer = await client.get(f"/privacy/{name}?token={secret}&campaign=autumn")
        assert answer.status_code == 200
        assert secret not in answer.text
        assert "campaign=autumn&amp;lang=fr" in answer.text


async def test_unknown_pages_are_not_found_and_static_files_are_served(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/privacy/no-such-page")).status_code == 404
    assert (await client.get("/privacy/rights")).status_code == 303  # signed in only
    script = await client.get("/privacy/static/sign-in.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert (await client.get("/privacy/static/../routes.py")).status_code == 404
    theme = await client.get("/privacy/theme.css")
    assert theme.headers["content-type"].startswith("text/css")
    assert "--primary:#1f5f8b" in theme.text


async def test_a_page_the_shop_serves_itself_is_linked_there(settings: Settings) -> None:
    own = settings.model_copy(update={"page_urls": {"sign-up": "https://shop.example/join"}})
    reader = Reader(lang="en", lang_in_query=True, signed_in=False, query={})
    html = render_page(own, PAGES["sign-in"], reader)
    assert 'href="https://shop.example/join"' in html
    assert 'href="/privacy/privacy-policy?lang=en"' in html


def test_the_shops_colour_keeps_its_text_readable() -> None:
    for colour in ("#1f5f8b", "#ffdd00", "#777777", "#000000", "#ffffff", "#e60023"):
        css = theme_css(Settings(shop_primary_colour=colour))
        values = dict(re.findall(r"--([a-z-]+):(#[0-9a-f]{6})", css))
        assert contrast(values["primary"], values["on-primary"]) >= 4.5, colour
        assert contrast(values["link"], "#ffffff") >= 4.5, colour


@pytest.mark.parametrize(
    "logo", ["/static/logo.png", "https://shop.example.test/logo.svg", "data:image/png;base64,AA"]
)
def test_a_logo_is_on_this_site_or_inline(logo: str) -> None:
    settings = Settings(public_url="https://shop.example.test", shop_logo_url=logo)
    reader = Reader(lang="en", lang_in_query=False, signed_in=False, query={})
    assert f'<img class="logo" src="{logo}" alt="Custos Demo Shop">' in render_page(
        settings, PAGES["sign-in"], reader
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("shop_logo_url", "https://cdn.elsewhere.example/logo.png"),
        ("shop_logo_url", "//elsewhere.example/logo.png"),
        ("shop_logo_url", "javascript:alert(1)"),
        ("shop_primary_colour", "red"),
        ("shop_support_email", "not an address"),
    ],
)
def test_branding_settings_are_checked_at_start(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(public_url="https://shop.example.test", **{field: value})


def test_the_installed_package_has_every_page_file() -> None:
    """scripts/check-install.sh installs the package as a wheel: its package-data patterns
    must take every template, catalogue, style sheet and module."""
    pyproject = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text("utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["api.privacy_centre"]
    files = [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".py"]
    files = [p for p in files if "__pycache__" not in p.parts]
    assert len(files) > 10
    for path in files:
        assert any(path.relative_to(PACKAGE).match(pattern) for pattern in patterns), path


def test_a_key_in_two_catalogue_files_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each page's messages are in their own file; a key repeated in another file would
    silently win over the first, so loading refuses it."""
    from api.privacy_centre import catalogue

    (tmp_path / "xx").mkdir()
    (tmp_path / "xx" / "a.json").write_text('{"a.title": "A"}', "utf-8")
    (tmp_path / "xx" / "b.json").write_text('{"b.title": "B", "a.title": "again"}', "utf-8")
    monkeypatch.setattr(catalogue, "_DIRECTORY", tmp_path)
    with pytest.raises(ValueError, match=r"repeats a\.title"):
        catalogue.messages.__wrapped__("xx")
    (tmp_path / "xx" / "b.json").write_text('{"b.title": "B"}', "utf-8")
    assert catalogue.messages.__wrapped__("xx") == {"a.title": "A", "b.title": "B"}
