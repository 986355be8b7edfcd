"""Downloading an access export (issue 5, and the hardening against link scanners).

Opening the mailed link (HEAD and GET: what mail scanners and link previews do) shows a page
and uses nothing up. The customer downloads once, deliberately, with the page's button: a
POST from our own page, which serves the file and takes the link. A POST from another site is
refused and uses nothing up. Every POST of an issued link is audited; the pages are not."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from tortoise.transactions import in_transaction

from api.clock import FakeClock
from api.rights.download_page import CSP
from api.rights.downloads import _FIELDS, _take
from api.rights.export import build_export, issue_download, serialize
from api.security.tokens import new_token, token_hash
from api.services import Services
from authz.audit import AuditTrail, verify
from models import AuditEvent, DataExport, RightsRequest
from tests.conftest import stored_customer

SHOP = "https://shop.example.test"
OUR_PAGE = {"origin": SHOP, "sec-fetch-site": "same-origin"}
"""What a browser sends with the form of our page."""
GONE = {
    "errors": [
        {
            "message": "This link was already used or has expired; you can ask again.",
            "extensions": {"code": "EXPORT_GONE"},
        }
    ]
}
FORBIDDEN = {
    "errors": [
        {
            "message": "Download your data from the page the link opens.",
            "extensions": {"code": "FORBIDDEN_ORIGIN"},
        }
    ]
}


@dataclass(frozen=True)
class Issued:
    token: str
    url: str
    document: dict[str, Any]
    customer_id: UUID
    request_id: UUID
    email: str


@pytest.fixture
async def issued(services: Services, clock: FakeClock) -> Issued:
    """An approved access request of a customer, answered with an export and its link."""
    customer = await stored_customer(at=clock.now() - timedelta(days=30))
    request = await RightsRequest.create(
        customer=customer,
        kind="access",
        status="approved",
        channel="account",
        submitted_at=clock.now() - timedelta(days=1),
    )
    document = await build_export(customer_id=customer.id, include=lambda _: True, now=clock.now())
    async with in_transaction() as conn:
        token = await issue_download(
            services=services,
            request_id=request.id,
            customer_id=customer.id,
            document=document,
            using_db=conn,
        )
    return Issued(token, f"/exports/{token}", document, customer.id, request.id, customer.email)


async def stored() -> DataExport:
    [export] = await DataExport.all()
    return export


async def untouched(issued: Issued) -> None:
    """The link is still unused and the document still there."""
    export = await stored()
    assert export.used_at is None
    assert export.document == serialize(issued.document)


async def downloads() -> list[AuditEvent]:
    return await AuditEvent.filter(event="rights", operation="export_download").order_by("id")


async def download(
    client: httpx.AsyncClient, issued: Issued, headers: dict[str, str] = OUR_PAGE
) -> httpx.Response:
    """The page's button: an empty form POST to the page's own address."""
    return await client.post(issued.url, headers=headers)


def assert_page(response: httpx.Response, status: int) -> str:
    """A page without script in the privacy centre's look: strict CSP, nothing loaded but
    the centre's own style sheets, no inline style, no address elsewhere."""
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    for forbidden in ("<script", "<style", " style=", "://", "action="):
        assert forbidden not in html
    loaded = re.findall(r'<(?:link|img)\b[^>]*\s(?:href|src)="([^"]*)"', html)
    assert set(loaded) == {"data:,", "/privacy/static/centre.css", "/privacy/theme.css"}
    assert "script-src" not in CSP
    assert "style-src 'self';" in CSP
    assert "unsafe" not in CSP
    return html


async def test_opening_the_link_shows_a_page_and_uses_nothing_up(
    client: httpx.AsyncClient, issued: Issued
) -> None:
    # given an issued export
    # when a mail scanner sends HEAD, a link preview GET, and the customer opens it too
    head = await client.head(issued.url)
    preview = await client.get(issued.url)
    opened = await client.get(issued.url)
    # then each gets the page, with a button posting to the same address and the expiry
    assert head.status_code == 200
    assert head.headers["content-type"] == "text/html; charset=utf-8"
    for response in (preview, opened):
        html = assert_page(response, 200)
        assert (
            '<form method="post"><button type="submit">Download your data</button></form>'
        ) in html
        assert "until 8 January 2026 at 12:00 UTC" in html
        # and no personal data, not even the token
        for secret in (issued.email, str(issued.customer_id), str(issued.request_id)):
            assert secret not in html
        assert issued.token not in html
    # and nothing is used up, nothing audited
    await untouched(issued)
    assert await downloads() == []
    # and the customer's button still downloads the file
    pressed = await download(client, issued)
    assert pressed.status_code == 200
    assert pressed.json() == issued.document


async def test_the_button_downloads_once_then_the_link_is_gone(
    client: httpx.AsyncClient, issued: Issued
) -> None:
    # given an issued export
    # when the customer presses the page's button
    first = await download(client, issued)
    # then they get the exact document as a JSON attachment
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.headers["content-disposition"] == (
        'attachment; filename="custos-export-2026-01-01.json"'
    )
    assert first.headers["cache-control"] == "no-store"
    assert first.json() == issued.document
    # and the stored copy is blanked, the link used
    export = await stored()
    assert export.document == ""
    assert export.used_at is not None
    # when they press it again, it is gone, and the link opens the "gone" page
    second = await download(client, issued)
    assert second.status_code == 410
    assert second.json() == GONE
    page = assert_page(await client.get(issued.url), 410)
    assert "already used or has expired" in page
    # and both presses are in the decision log, as the customer, about the customer
    rows = await downloads()
    assert [(r.decision, r.reason) for r in rows] == [
        ("allow", f"request {issued.request_id}"),
        ("deny", f"already downloaded, request {issued.request_id}"),
    ]
    assert [r.request_id for r in rows] == [
        first.headers["x-request-id"],
        second.headers["x-request-id"],
    ]
    for row in rows:
        assert (row.actor_kind, row.actor_id, row.subject_id) == (
            "customer",
            str(issued.customer_id),
            str(issued.customer_id),
        )
    assert (await verify()).ok


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        {"origin": "http://shop.example.test"},
        {"origin": "https://www.shop.example.test", "sec-fetch-site": "same-site"},
        {"origin": "null"},  # a sandboxed frame elsewhere, or a page under no-referrer
        {"origin": "null", "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "cross-site"},
        {"referer": "https://evil.example/inbox"},
    ],
    ids=repr,
)
async def test_a_cross_site_post_is_refused_and_uses_nothing_up(
    client: httpx.AsyncClient, issued: Issued, headers: dict[str, str]
) -> None:
    # given an issued export
    # when another site's page posts to the link
    refused = await download(client, issued, headers)
    # then it is refused, and the refusal audited
    assert refused.status_code == 403
    assert refused.json() == FORBIDDEN
    [row] = await downloads()
    assert (row.decision, row.reason) == ("deny", f"not from our page, request {issued.request_id}")
    assert row.request_id == refused.headers["x-request-id"]
    # and nothing is used up: the customer's own button still downloads
    await untouched(issued)
    assert (await download(client, issued)).json() == issued.document


@pytest.mark.parametrize(
    "headers",
    [
        OUR_PAGE,
        {"origin": SHOP},  # a browser without Sec-Fetch-Site
        {"origin": "null", "sec-fetch-site": "same-origin"},  # our page, were it no-referrer
        {"sec-fetch-site": "same-origin"},
        {"referer": f"{SHOP}/exports/page"},  # an older browser: no Origin
        {},  # a program (curl): it could send any header anyway
    ],
    ids=repr,
)
async def test_a_post_from_our_page_or_a_program_downloads(
    client: httpx.AsyncClient, issued: Issued, headers: dict[str, str]
) -> None:
    response = await download(client, issued, headers)
    assert response.status_code == 200
    assert response.json() == issued.document


async def test_concurrent_presses_deliver_once(client: httpx.AsyncClient, issued: Issued) -> None:
    responses = await asyncio.gather(*(download(client, issued) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 410, 410, 410]
    delivered = next(r for r in responses if r.status_code == 200)
    assert delivered.json() == issued.document
    assert sorted(r.decision for r in await downloads()) == ["allow", "deny", "deny", "deny"]
    assert (await stored()).document == ""


async def test_an_expired_link_is_gone(
    client: httpx.AsyncClient, issued: Issued, clock: FakeClock
) -> None:
    # given an export whose link has expired
    clock.advance(days=7)
    # when it is opened, the page says it is gone (a page view is not audited)
    assert_page(await client.get(issued.url), 410)
    assert await downloads() == []
    # when the button is pressed anyway, it is refused and audited
    response = await download(client, issued)
    assert response.status_code == 410
    assert response.json() == GONE
    [row] = await downloads()
    assert (row.decision, row.reason) == ("deny", f"expired, request {issued.request_id}")
    assert (await stored()).used_at is None


async def test_a_link_works_until_it_expires(
    client: httpx.AsyncClient, issued: Issued, clock: FakeClock
) -> None:
    clock.advance(days=7, seconds=-1)
    assert_page(await client.get(issued.url), 200)
    response = await download(client, issued)
    assert response.status_code == 200
    assert response.json() == issued.document


@pytest.mark.parametrize("token", ["unknown", "malformed"])
async def test_an_unknown_link_is_not_found(
    client: httpx.AsyncClient, issued: Issued, token: str
) -> None:
    # given an issued export, and a link that is not its own
    path = f"/exports/{new_token()}" if token == "unknown" else "/exports/not%20a%20token"
    # when it is opened, and posted to
    page = await client.get(path)
    head = await client.head(path)
    pressed = await client.post(path, headers=OUR_PAGE)
    # then the page says so, and the POST is answered as before
    assert "This download link is not valid" in assert_page(page, 404)
    assert head.status_code == 404
    assert pressed.status_code == 404
    assert pressed.json() == {
        "errors": [{"message": "No such export.", "extensions": {"code": "NOT_FOUND"}}]
    }
    # and nothing is audited (no customer to log about) nor used up
    assert await downloads() == []
    await untouched(issued)


async def test_a_download_that_read_the_link_before_another_took_it_is_refused(
    client: httpx.AsyncClient, issued: Issued, services: Services
) -> None:
    # given a download that found the link unused, then lost the race to another one
    seen = await DataExport.filter(token_hash=token_hash(issued.token)).first().values(*_FIELDS)
    assert (await download(client, issued)).status_code == 200
    # when it takes the link, the conditional UPDATE finds it taken
    refusal = await _take(seen, services.clock.now(), AuditTrail("late"))
    # then it is refused and logged, and the first download's mark stands
    assert refusal == "already downloaded"
    assert [(r.decision, r.request_id) for r in await downloads()][-1] == ("deny", "late")
    assert (await stored()).document == ""
