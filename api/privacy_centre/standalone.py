"""Pages of other features in the privacy centre's look, served without JavaScript: the
unsubscribe page (api/marketing/unsubscribe_http.py) and the export download page
(api/rights/download_page.py). Each is a heading, a few paragraphs and at most one form
that posts to the page's own address, inside the centre's layout (rendering.layout: banner,
footer with the support address and the languages) with its style sheet and theme.

A feature builds a `StandalonePage` from catalogue keys, without the request: the language
is chosen as the centre chooses it (`?lang=`, else `Accept-Language`, else English) from the
request the response answers, when it is sent. The page runs no script, so its
Content-Security-Policy allows the centre's style sheets, images of this site (the shop's
logo) and a form posting here, and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from api.mail.links import Page
from api.privacy_centre.catalogue import choose_language, messages
from api.privacy_centre.rendering import Reader, href, layout
from api.settings import Settings

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
NAV = (Page.SIGN_IN, Page.PRIVACY_POLICY)
"""The banner's links: pages for anyone (these pages do not look at the session)."""
_QUERY_KEPT = 10
"""At most this many query parameters are carried into the language links."""
_REFERRER_SAME_ORIGIN = '\n<meta name="referrer" content="same-origin">'


@dataclass(frozen=True, slots=True)
class Text:
    """A catalogue message; a parameter is a value (escaped, never translated) or another
    message (translated in the same language)."""

    key: str
    params: Mapping[str, str | Text] = field(default_factory=dict)

    def words(self, catalogue: Mapping[str, str]) -> str:
        message = catalogue[self.key]
        for name, value in self.params.items():
            said = value.words(catalogue) if isinstance(value, Text) else value
            message = message.replace("{" + name + "}", said)
        return message


@dataclass(frozen=True, slots=True)
class Form:
    """A form posting its hidden fields to the page's own address (no action attribute: a
    token in the address never appears in the markup)."""

    button: Text
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Content:
    """What a page says. `tone` frames the paragraphs: "success" (done), "alert" (refused)
    or "" (plain). `same_origin_referrer` lets the form's POST carry our origin (the
    export page checks it); every response otherwise sends no referrer at all."""

    name: str
    title: Text
    paragraphs: tuple[Text, ...]
    form: Form | None = None
    tone: str = ""
    same_origin_referrer: bool = False


def _reader(request: Request) -> Reader:
    lang, in_query = choose_language(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )
    query = {k: v for k, v in list(request.query_params.items())[:_QUERY_KEPT] if k != "lang"}
    return Reader(lang=lang, lang_in_query=in_query, signed_in=False, query=query)


def _nav(settings: Settings, reader: Reader, catalogue: Mapping[str, str]) -> str:
    items = "".join(
        f'<li><a href="{escape(href(settings, page, reader))}" rel="noreferrer">'
        f"{escape(catalogue['nav.' + page.value])}</a></li>"
        for page in NAV
    )
    return f"<ul>{items}</ul>"


def _content(content: Content, catalogue: Mapping[str, str]) -> str:
    paragraphs = "".join(f"<p>{escape(p.words(catalogue))}</p>" for p in content.paragraphs)
    if content.tone:
        paragraphs = f'<div class="{escape(content.tone)}">{paragraphs}</div>'
    form = ""
    if content.form is not None:
        hidden = "".join(
            f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
            for name, value in content.form.fields
        )
        form = (
            f'<form method="post">{hidden}'
            f'<button type="submit">{escape(content.form.button.words(catalogue))}</button>'
            "</form>"
        )
    return f"<h1>{escape(content.title.words(catalogue))}</h1>\n{paragraphs}{form}"


def render_standalone(settings: Settings, reader: Reader, content: Content) -> str:
    """The page as HTML in `reader`'s language."""
    catalogue = messages(reader.lang)
    return layout(
        settings,
        reader,
        name=content.name,
        title=content.title.words(catalogue),
        content=_content(content, catalogue),
        nav=_nav(settings, reader, catalogue),
        head=_REFERRER_SAME_ORIGIN if content.same_origin_referrer else "",
    )


class StandalonePage(Response):
    """An HTML response rendered when it is sent, in the language of the request it
    answers, with the shop's settings of the running app."""

    def __init__(
        self, content: Content, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(None, status_code=status_code)
        self.content = content
        self.extra_headers = headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        settings: Settings = request.app.state.services.settings
        reader = _reader(request)
        response = HTMLResponse(
            render_standalone(settings, reader, self.content),
            status_code=self.status_code,
            headers={
                "Content-Security-Policy": CSP,
                "Content-Language": reader.lang,
                "Vary": "Accept-Language",
                **self.extra_headers,
            },
        )
        await response(scope, receive, send)
