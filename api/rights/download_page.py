"""The page `GET /exports/{token}` shows: what the link is for, until when it works, and a
"Download your data" button that POSTs to the same address. Opening it changes nothing, so
a mail scanner or link preview that follows the link does not use up the one download.

The pages hold no personal data (not even the customer's name), load nothing from
elsewhere and run no script: a Content-Security-Policy allows only their own inline style
(by its hash) and a form posting to this site."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape

from starlette.responses import HTMLResponse, Response

from api.mail.templates import long_utc

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}button{font:inherit;padding:.5rem 1.25rem;cursor:pointer}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
BUTTON = "Download your data"
# Every response carries `Referrer-Policy: no-referrer`, under which a browser sends
# `Origin: null` with the form's POST; `same-origin` keeps the page's real origin in it (and
# a Referer, only to us), so browsers without `Sec-Fetch-Site` are recognised too.
_REFERRER = '<meta name="referrer" content="same-origin">'


def _page(status: int, title: str, *paragraphs: str, button: bool = False) -> Response:
    """A small self-contained page; every text is escaped. The form has no action: it posts
    to the page's own address, so the token never appears in the markup."""
    body = "".join(f"<p>{escape(text)}</p>" for text in paragraphs)
    if button:
        body += f'<form method="post"><button type="submit">{BUTTON}</button></form>'
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex">{_REFERRER}'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})


def ready_page(expires_at: datetime) -> Response:
    return _page(
        200,
        "Your personal data",
        "The copy of the personal data we hold about you, which you asked for, is ready as "
        "one JSON file.",
        f"Press the button to download it. This works once, until {long_utc(expires_at)}; "
        "the file is then deleted from our systems.",
        button=True,
    )


def not_found_page() -> Response:
    return _page(
        404,
        "Link not valid",
        "This download link is not valid. Please use the link from the message exactly as "
        "it arrived.",
    )


def gone_page() -> Response:
    return _page(
        410,
        "Link no longer works",
        "This link was already used or has expired; you can ask again.",
    )
