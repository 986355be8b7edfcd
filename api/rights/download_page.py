"""The page `GET /exports/{token}` shows: what the link is for, until when it works, and a
"Download your data" button that POSTs to the same address. Opening it changes nothing, so
a mail scanner or link preview that follows the link does not use up the one download.

The pages hold no personal data (not even the customer's name) and run no script: they are
in the privacy centre's look and language (api/privacy_centre/standalone.py), load nothing
from elsewhere, and their Content-Security-Policy allows only the centre's style sheets,
images of this site and a form posting to it."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response

from api.privacy_centre.standalone import CSP as STANDALONE_CSP
from api.privacy_centre.standalone import Content, Form, StandalonePage, Text

CSP = STANDALONE_CSP
BUTTON = "export.button"
# Every response carries `Referrer-Policy: no-referrer`, under which a browser sends
# `Origin: null` with the form's POST; `same-origin` keeps the page's real origin in it (and
# a Referer, only to us), so browsers without `Sec-Fetch-Site` are recognised too.
_SAME_ORIGIN_REFERRER = True


def _page(status: int, title: str, *paragraphs: Text, button: bool = False) -> Response:
    """A page in the privacy centre's look; `title` is a catalogue key. The form has no
    action: it posts to the page's own address, so the token never appears in the markup."""
    content = Content(
        name="export",
        title=Text(title),
        paragraphs=paragraphs,
        form=Form(button=Text(BUTTON)) if button else None,
        tone="" if status == 200 else "alert",
        same_origin_referrer=_SAME_ORIGIN_REFERRER,
    )
    return StandalonePage(content, status)


def _moment(when: datetime) -> Text:
    """A moment as people read it whatever their time zone, e.g. "8 January 2026 at 12:00
    UTC", in the page's language (no script: the server writes it)."""
    when = when.astimezone(UTC)
    return Text(
        "export.moment",
        {
            "day": str(when.day),
            "month": Text(f"export.month.{when.month}"),
            "year": str(when.year),
            "time": f"{when:%H:%M}",
        },
    )


def ready_page(expires_at: datetime) -> Response:
    return _page(
        200,
        "export.title",
        Text("export.ready"),
        Text("export.once", {"moment": _moment(expires_at)}),
        button=True,
    )


def not_found_page() -> Response:
    return _page(404, "export.not-found.title", Text("export.not-found"))


def gone_page() -> Response:
    return _page(410, "export.gone.title", Text("export.gone"))
