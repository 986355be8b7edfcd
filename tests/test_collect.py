"""`POST /collect`: the visit beacon (policy section 1, docs/ARCHITECTURE.md: promises and HTTP
API).

Strictly necessary events are kept whatever the consent, for security, with the full IP;
everything else only with analytics consent, with a truncated IP and a visitor id cookie set
only then. Advertising data only when personalised advertising is allowed and no Global
Privacy Control signal is sent. Malformed, oversized, mistyped or too frequent beacons are
refused with a code and store nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any
from uuid import UUID

import httpx
import pytest
from pydantic import ValidationError

from api.clock import FakeClock
from api.services import Services
from api.settings import Settings
from api.visits.endpoint import IP_SCALE
from api.visits.ratelimit import BeaconLimiter
from api.visits.service import NECESSARY_ACTIONS, VISITOR_COOKIE
from models import AuditEvent, ConsentRecord, Customer, VisitEvent
from tests.conftest import CLIENT_IP, GQL, login, register

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"

SHOP = "https://shop.example.test"
"""The origin of `Settings.public_url` in the tests: the shop's own pages."""
NECESSARY = ["login", "logout", "register", "checkout", "payment", "password_change"]
COOKIE_DAYS = 395
SET_CONSENT = """
mutation($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) { __typename }
}
"""
ANALYTICS = [{"purpose": "analytics", "granted": True}]
ADS = [{"purpose": "marketing.ads", "granted": True}]
AD_PAGE = "/rings?sort=price&utm_source=news&utm_campaign=spring&gclid=abc&color=red"
STRIPPED_PAGE = "/rings?sort=price&color=red"


def beacon(**fields: Any) -> dict[str, Any]:
    return {"page": "/rings", "action": "view", **fields}


async def collect(
    client: httpx.AsyncClient, *, headers: dict[str, str] | None = None, **fields: Any
) -> httpx.Response:
    """A beacon as the shop's page sends it (a browser adds the page's `Origin`)."""
    return await client.post(
        "/collect", json=beacon(**fields), headers={"origin": SHOP, **(headers or {})}
    )


async def post_raw(
    client: httpx.AsyncClient, content: bytes, content_type: str = "application/json"
) -> httpx.Response:
    return await client.post(
        "/collect", content=content, headers={"content-type": content_type, "origin": SHOP}
    )


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_of(response: httpx.Response) -> Any:
    [header] = set_cookies(response)
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    return jar[VISITOR_COOKIE]


def error_code(response: httpx.Response) -> str:
    body = response.json()
    [error] = body["errors"]
    assert set(error) == {"message", "extensions"}
    assert error["message"]
    code: str = error["extensions"]["code"]
    return code


async def events() -> list[VisitEvent]:
    return await VisitEvent.all().order_by("id")


@asynccontextmanager
async def client_at(app: Any, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser, at another address, on the same app."""
    transport = httpx.ASGITransport(app=app, client=(ip, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


async def signed_in_customer(gql: GQL, *consents: dict[str, Any]) -> tuple[str, Customer]:
    """A registered customer signed in over the API (token also in the client's cookie jar)."""
    await register(gql, consents=list(consents))
    token = await login(gql)
    return token, await Customer.get()


# --- what is stored ---------------------------------------------------------------------


async def test_an_analytics_event_with_consent_is_stored_with_a_truncated_ip(
    gql: GQL, clock: FakeClock
) -> None:
    # given an anonymous visitor who accepted analytics on the banner
    # when the page sends a beacon
    response = await collect(
        gql.client,
        headers={"user-agent": CHROME_WINDOWS, "accept-language": "en-GB,en;q=0.9"},
        page="/rings?sort=price#reviews",
        referrer="https://search.example/results?q=jane+doe#top",
        campaign="spring-sale",
        consent=["analytics"],
    )
    # then it is accepted and stored for analytics
    assert response.status_code == 202
    assert response.json() == {"stored": True, "purpose": "analytics"}
    [event] = await events()
    assert event.purpose == "analytics"
    assert event.customer_id is None
    assert event.visitor_digest
    assert event.at == clock.now()
    assert (event.page, event.action) == ("/rings?sort=price", "view")
    # and the referrer is reduced to origin and path, the campaign dropped without ads consent
    assert event.referrer == "https://search.example/results"
    assert event.campaign == ""
    assert (event.browser, event.os, event.device_type, event.language) == (
        "Chrome 124",
        "Windows",
        "desktop",
        "en-GB",
    )
    # and only the /24 network is kept, never the address
    assert event.ip_full is None
    assert event.ip_truncated == "203.0.113.0/24"


@pytest.mark.parametrize("consent", [None, [], ["marketing.ads"], ["personalization"]])
async def test_without_analytics_consent_an_analytics_event_is_not_stored(
    gql: GQL, consent: list[str] | None
) -> None:
    # given a visitor who did not accept analytics
    fields: dict[str, Any] = {} if consent is None else {"consent": consent}
    # when the page sends an analytics beacon
    response = await collect(gql.client, **fields)
    # then nothing is stored, and no cookie at all is set
    assert response.status_code == 202
    assert response.json() == {"stored": False, "purpose": None}
    assert await events() == []
    assert set_cookies(response) == []


def test_the_necessary_actions_are_those_of_the_issue() -> None:
    assert sorted(NECESSARY_ACTIONS) == sorted(NECESSARY)


@pytest.mark.parametrize("action", NECESSARY)
async def test_necessary_events_are_kept_for_security_whatever_the_consent(
    gql: GQL, action: str
) -> None:
    # given a visitor without any consent
    # when a strictly necessary event is sent
    response = await collect(
        gql.client, page="/account", action=action, referrer="https://search.example/x"
    )
    # then it is stored for security, with the full IP, no visitor id and no referrer
    assert response.status_code == 202
    assert response.json() == {"stored": True, "purpose": "security"}
    [event] = await events()
    assert (event.purpose, event.action, event.page) == ("security", action, "/account")
    assert event.ip_full == CLIENT_IP
    assert event.visitor_digest is None
    assert event.referrer == ""
    assert event.customer_id is None
    # and no cookie is set
    assert set_cookies(response) == []


async def test_a_necessary_event_with_analytics_consent_keeps_no_visitor_id_nor_referrer(
    gql: GQL,
) -> None:
    """By design: strictly necessary events are kept with the full IP, without the
    visitor id or the referrer, whatever the consent (also when analytics is accepted)."""
    # given a visitor who accepted analytics
    # when they check out
    response = await collect(
        gql.client,
        page="/checkout",
        action="checkout",
        referrer="https://search.example/results?q=x",
        consent=["analytics"],
    )
    # then the event is kept for security, with neither the visitor id nor the referrer
    assert response.json() == {"stored": True, "purpose": "security"}
    [event] = await events()
    assert event.ip_full == CLIENT_IP
    assert (event.referrer, event.visitor_digest) == ("", None)


async def test_ipv6_analytics_events_keep_the_48_network(app: Any) -> None:
    # given a visitor on IPv6 who accepted analytics
    async with client_at(app, "2001:db8:1234:5678::1") as client:
        # when they send an analytics event and a necessary one
        viewed = await collect(client, consent=["analytics"])
        paid = await collect(client, action="payment")
    # then the analytics event keeps the /48 network, the security event the address
    assert viewed.json()["stored"] is True
    assert paid.json()["stored"] is True
    analytics, security = await events()
    assert (analytics.ip_full, analytics.ip_truncated) == (None, "2001:db8:1234::/48")
    assert security.ip_full == "2001:db8:1234:5678::1"


async def test_the_referrer_keeps_no_credentials(gql: GQL) -> None:
    """An origin has no user information: a referrer with credentials in it (seen with
    misconfigured links) keeps scheme, host, port and path only."""
    await collect(
        gql.client,
        referrer="https://jane.doe%40example.com:s3cret@search.example:8443/results?q=1",
        consent=["analytics"],
    )
    [event] = await events()
    assert event.referrer == "https://search.example:8443/results"


async def test_the_referrer_is_empty_for_a_non_web_address(gql: GQL) -> None:
    await collect(gql.client, referrer="javascript:alert(1)", consent=["analytics"])
    await collect(gql.client, referrer="android-app://com.example/", consent=["analytics"])
    assert [e.referrer for e in await events()] == ["", ""]


# --- malformed beacons --------------------------------------------------------------------


def necessary(**fields: Any) -> bytes:
    """A necessary beacon (stored whatever the consent) with `fields` changed; None drops
    a field. Were it accepted, it would be stored."""
    data = {**beacon(action="login"), **fields}
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


MALFORMED = [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"", id="empty"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"page"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(necessary(page=None), id="no-page"),
    pytest.param(necessary(action=None), id="no-action"),
    pytest.param(necessary(page=""), id="empty-page"),
    pytest.param(necessary(page="   "), id="blank-page"),
    pytest.param(necessary(page=5), id="number-page"),
    pytest.param(necessary(email="jane@example.com"), id="unknown-field"),
    pytest.param(necessary(action="View"), id="upper-case-action"),
    pytest.param(necessary(action="1view"), id="digit-first-action"),
    pytest.param(necessary(action="add to cart"), id="space-in-action"),
    pytest.param(necessary(action="a" * 65), id="long-action"),
    pytest.param(necessary(page="/" + "a" * 512), id="long-page"),
    pytest.param(necessary(page="/a\nb"), id="control-char-page"),
    pytest.param(necessary(referrer="https://x.example/" + "a" * 500), id="long-referrer"),
    pytest.param(necessary(campaign="c" * 201), id="long-campaign"),
    pytest.param(necessary(referrer=7), id="number-referrer"),
    pytest.param(necessary(consent=["gossip"]), id="unknown-purpose"),
    pytest.param(necessary(consent=["analytics", "service"]), id="essential-purpose"),
    pytest.param(necessary(consent="analytics"), id="consent-not-a-list"),
    pytest.param(necessary(consent=[1]), id="consent-not-strings"),
]


@pytest.mark.parametrize("body", MALFORMED)
async def test_a_malformed_beacon_is_refused_and_nothing_is_stored(gql: GQL, body: bytes) -> None:
    # when a malformed beacon arrives (a necessary one, stored whatever the consent)
    response = await post_raw(gql.client, body)
    # then it is refused with INVALID_BEACON and nothing is stored or set
    assert response.status_code == 400
    assert error_code(response) == "INVALID_BEACON"
    assert await events() == []
    assert set_cookies(response) == []


async def test_fields_at_their_limits_are_accepted(gql: GQL) -> None:
    page = "/" + "a" * 511
    response = await collect(
        gql.client,
        page=page,
        action="a" + "b" * 63,
        campaign="c" * 200,
        consent=["analytics", "analytics"],
    )
    assert response.json() == {"stored": True, "purpose": "analytics"}
    [event] = await events()
    assert event.page == page


# --- size and content type ----------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid necessary beacon padded with JSON whitespace to exactly `size` bytes."""
    core = json.dumps(beacon(action="login")).encode()
    return core[:-1] + b" " * (size - len(core)) + b"}"


async def test_a_beacon_of_exactly_8_kib_is_accepted(gql: GQL) -> None:
    response = await post_raw(gql.client, padded(8192))
    assert response.status_code == 202
    assert len(await events()) == 1


async def test_a_beacon_past_8_kib_is_refused(gql: GQL) -> None:
    # when a beacon of 8 KiB and one byte arrives with its Content-Length
    response = await post_raw(gql.client, padded(8193))
    # then it is refused as too large, and nothing is stored
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"
    assert await events() == []


async def test_a_chunked_beacon_past_8_kib_is_refused_without_reading_it_all(gql: GQL) -> None:
    # given a body sent in 1 KiB chunks without a Content-Length (chunked), far too long
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        body = padded(1024 * 1024)
        for start in range(0, len(body), 1024):
            sent.append(start)
            yield body[start : start + 1024]

    # when it is posted
    request = gql.client.build_request(
        "POST", "/collect", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await gql.client.send(request)
    # then it is refused as too large, nothing is stored, and reading stopped early
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"
    assert await events() == []
    assert len(sent) <= 10


async def test_a_small_chunked_beacon_is_accepted(gql: GQL) -> None:
    body = json.dumps(beacon(action="login")).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    response = await gql.client.post(
        "/collect", content=chunks(), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 202
    assert len(await events()) == 1


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
    ],
)
async def test_another_content_type_is_refused(gql: GQL, content_type: str) -> None:
    body = json.dumps(beacon(action="login")).encode()
    response = await post_raw(gql.client, body, content_type)
    assert response.status_code == 415
    assert error_code(response) == "UNSUPPORTED_MEDIA_TYPE"
    assert await events() == []


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "text/plain;charset=UTF-8", "TEXT/PLAIN"]
)
async def test_json_and_send_beacon_content_types_are_accepted(gql: GQL, content_type: str) -> None:
    body = json.dumps(beacon(action="login")).encode()
    response = await post_raw(gql.client, body, content_type)
    assert response.status_code == 202
    assert len(await events()) == 1


# --- where beacons come from ---------------------------------------------------------------

OTHER_SITE = "https://evil.example"


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": OTHER_SITE},
        {"origin": "null"},  # a sandboxed frame, or a page with Referrer-Policy: no-referrer
        {"origin": "null", "sec-fetch-site": "cross-site"},
        {"origin": "http://shop.example.test"},
        {"origin": "https://shop.example.test.evil.example"},
        {"origin": OTHER_SITE, "referer": f"{SHOP}/rings", "sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "cross-site", "referer": f"{SHOP}/rings"},
        {"referer": f"{OTHER_SITE}/rings"},
        {"referer": "about:blank"},
        {"sec-fetch-site": "same-site"},
        {"sec-fetch-site": "none"},
    ],
    ids=repr,
)
async def test_another_site_cannot_plant_events(gql: GQL, headers: dict[str, str]) -> None:
    # given another site's page making its visitor's browser post a "login" beacon, as
    # text/plain (a simple request: no CORS preflight), with a body we can tell was read
    read: list[bytes] = []
    body = json.dumps(beacon(action="login", consent=["analytics"])).encode()

    async def chunks() -> AsyncIterator[bytes]:
        read.append(body)
        yield body

    audited = await AuditEvent.all().count()
    # when it arrives
    response = await gql.client.post(
        "/collect", content=chunks(), headers={"content-type": "text/plain", **headers}
    )
    # then it is refused from its headers alone, without reading the body
    assert response.status_code == 403
    assert error_code(response) == "FORBIDDEN_ORIGIN"
    assert read == []
    # and nothing is stored, no cookie set, nothing audited
    assert await events() == []
    assert set_cookies(response) == []
    assert await AuditEvent.all().count() == audited


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": SHOP},
        {"origin": SHOP, "sec-fetch-site": "same-origin"},
        {"origin": "null", "sec-fetch-site": "same-origin"},  # our page, under no-referrer
        {"referer": f"{SHOP}/rings?size=7"},  # an older browser: no Origin on a POST
        {"referer": f"{SHOP}/rings", "sec-fetch-site": "same-site"},
        {"sec-fetch-site": "same-origin"},
        {},  # a program, not a browser: it could send any of these headers anyway
    ],
    ids=repr,
)
async def test_the_shops_own_pages_and_programs_are_accepted(
    gql: GQL, headers: dict[str, str]
) -> None:
    body = json.dumps(beacon(action="login")).encode()
    response = await gql.client.post(
        "/collect", content=body, headers={"content-type": "text/plain", **headers}
    )
    assert response.status_code == 202
    [event] = await events()
    assert (event.purpose, event.action) == ("security", "login")


async def test_configured_origins_may_send_beacons_too(gql: GQL, services: Services) -> None:
    # given a shop on another site than ours, and a development server, configured
    services.settings = services.settings.model_copy(
        update={"collect_origins": ("https://www.shop.example", "http://localhost:3000")}
    )
    sites = {
        "https://www.shop.example": "cross-site",
        "http://localhost:3000": "cross-site",
        SHOP: "same-origin",
        "https://shop.example": "cross-site",
    }
    # when each sends a beacon: those, our own origin, and an origin not configured
    answers = {}
    for origin, site in sites.items():
        headers = {"origin": origin, "sec-fetch-site": site}
        answers[origin] = (await collect(gql.client, action="login", headers=headers)).status_code
    # then the configured ones and our own are stored, the other one refused
    assert answers == {
        "https://www.shop.example": 202,
        "http://localhost:3000": 202,
        SHOP: 202,
        "https://shop.example": 403,
    }
    assert len(await events()) == 3


async def test_another_sites_beacons_spend_none_of_the_visitors_allowance(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given an address allowed IP_SCALE beacons a minute
    services.beacons = BeaconLimiter(per_minute=1, clock=clock)
    # when another site makes the visitor's browser send more than that
    for _ in range(2 * IP_SCALE):
        refused = await collect(gql.client, action="login", headers={"origin": OTHER_SITE})
        assert refused.status_code == 403
    # then the shop's own beacon from that address is still accepted
    assert (await collect(gql.client, action="login")).status_code == 202


def test_collect_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOS_COLLECT_ORIGINS", '["https://shop.example", "http://[::1]:3000"]')
    assert Settings().collect_origins == ("https://shop.example", "http://[::1]:3000")
    monkeypatch.delenv("CUSTOS_COLLECT_ORIGINS")
    assert Settings().collect_origins == ()


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example/",
        "https://shop.example/rings",
        "HTTPS://Shop.Example",
        "https://shop.example:443",
        "https://user@shop.example",
        "shop.example",
        "ftp://shop.example",
        "null",
    ],
)
def test_a_collect_origin_must_be_spelt_as_browsers_send_it(origin: str) -> None:
    with pytest.raises(ValidationError, match="CUSTOS_COLLECT_ORIGINS"):
        Settings(collect_origins=(origin,))


async def test_collect_answers_only_post(gql: GQL) -> None:
    response = await gql.client.get("/collect")
    assert response.status_code == 405
    assert await events() == []


# --- rate limit ---------------------------------------------------------------------------


async def test_a_flood_is_limited_per_visitor_and_refilled_over_time(
    gql: GQL, app: Any, services: Services, clock: FakeClock
) -> None:
    per_minute = 6
    services.beacons = BeaconLimiter(per_minute=per_minute, clock=clock)
    # given a visitor with a visitor id (analytics consent) who sent as many beacons as allowed
    gql.client.cookies.set(VISITOR_COOKIE, "visitor" + "0" * 15)
    for _ in range(per_minute):
        response = await collect(gql.client, action="login", consent=["analytics"])
        assert response.status_code == 202
    # when they send one more
    refused = await collect(gql.client, action="login", consent=["analytics"])
    # then it is refused with a Retry-After, and not stored
    assert refused.status_code == 429
    assert error_code(refused) == "RATE_LIMITED"
    assert refused.headers["retry-after"] == "10"
    assert await VisitEvent.all().count() == per_minute
    # and another visitor, at another address, is still served
    async with client_at(app, "198.51.100.9") as other:
        served = await collect(other, action="login")
    assert served.json() == {"stored": True, "purpose": "security"}
    # and after half a minute the first visitor has half their allowance back, no more
    clock.advance(seconds=30)
    for _ in range(per_minute // 2):
        response = await collect(gql.client, action="login", consent=["analytics"])
        assert response.status_code == 202
    assert (await collect(gql.client, action="login", consent=["analytics"])).status_code == 429
    assert await VisitEvent.all().count() == per_minute + 1 + per_minute // 2
    # and after a full minute, all of it
    clock.advance(seconds=60)
    for _ in range(per_minute):
        response = await collect(gql.client, action="login", consent=["analytics"])
        assert response.status_code == 202


async def test_an_address_is_limited_whatever_the_cookie_or_beacon(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    """Visitors share addresses (NAT), so an IP gets ten times a visitor's rate; made-up
    visitor cookies and malformed beacons count against it too."""
    per_minute = 2
    services.beacons = BeaconLimiter(per_minute=per_minute, clock=clock)
    allowed = per_minute * IP_SCALE
    # given one address sending beacons, each time with a new made-up visitor id
    statuses = []
    for n in range(allowed + 1):
        gql.client.cookies.set(VISITOR_COOKIE, f"madeup{n:016d}")
        response = await collect(gql.client, action="login")
        statuses.append(response.status_code)
    # then the address's limit holds
    assert statuses == [202] * allowed + [429]
    assert await VisitEvent.all().count() == allowed
    # and malformed beacons from it are refused by the limit before they are read
    refused = await post_raw(gql.client, b"{not json")
    assert refused.status_code == 429


async def test_a_signed_in_customer_is_limited_by_account(
    gql: GQL, app: Any, services: Services
) -> None:
    # given a signed-in customer who used their allowance
    token, _ = await signed_in_customer(gql)
    gql.client.cookies.clear()
    bearer = {"authorization": f"Bearer {token}"}
    for _ in range(services.settings.collect_per_minute):
        assert (await collect(gql.client, action="login", headers=bearer)).status_code == 202
    # when they send again from another address
    async with client_at(app, "198.51.100.9") as other:
        refused = await collect(other, action="login", headers=bearer)
        # then they are limited wherever they are
        assert refused.status_code == 429
        # and an anonymous visitor at that address is not
        assert (await collect(other, action="login")).status_code == 202


# --- the visitor cookie -------------------------------------------------------------------


async def test_analytics_consent_sets_one_secure_visitor_cookie(gql: GQL) -> None:
    # given an anonymous visitor who accepted analytics
    # when the first beacon arrives
    response = await collect(gql.client, consent=["analytics"])
    # then exactly one cookie is set: the visitor id, __Host-, HttpOnly, Secure, Lax, 395 days
    assert response.json() == {"stored": True, "purpose": "analytics"}
    cookie = cookie_of(response)
    assert len(cookie.value) == 22
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""
    assert cookie["max-age"] == str(COOKIE_DAYS * 86400)


async def test_later_beacons_reuse_the_visitor_id_and_never_store_it(gql: GQL) -> None:
    # given a visitor whose first beacon set the cookie
    first = await collect(gql.client, page="/", consent=["analytics"])
    visitor_id = cookie_of(first).value
    assert gql.client.cookies[VISITOR_COOKIE] == visitor_id
    # when they send more beacons (the browser sends the cookie back)
    later = [await collect(gql.client, page=f"/rings/{n}", consent=["analytics"]) for n in range(2)]
    # then no new cookie is set
    assert [set_cookies(r) for r in later] == [[], []]
    # and the events share one visitor digest, which is not the cookie value
    rows = await events()
    assert len(rows) == 3
    assert len({e.visitor_digest for e in rows}) == 1
    assert rows[0].visitor_digest not in {None, visitor_id}
    # and the raw cookie value appears in no column of any row
    for row in await VisitEvent.all().values():
        assert not [k for k, v in row.items() if visitor_id in str(v)], row


async def test_two_visitors_get_two_ids(gql: GQL, app: Any) -> None:
    await collect(gql.client, consent=["analytics"])
    async with client_at(app, CLIENT_IP) as other:
        await collect(other, consent=["analytics"])
    first, second = await events()
    assert first.visitor_digest != second.visitor_digest


async def test_a_forged_visitor_id_is_replaced(gql: GQL) -> None:
    response = await gql.client.post(
        "/collect",
        json=beacon(consent=["analytics"]),
        headers={"cookie": f"{VISITOR_COOKIE}=jane.doe@example.com"},
    )
    cookie = cookie_of(response)
    assert cookie.value != "jane.doe@example.com"
    assert len(cookie.value) == 22


@pytest.mark.parametrize("action", ["view", "login"])
async def test_withdrawing_banner_consent_deletes_the_visitor_cookie(gql: GQL, action: str) -> None:
    # given a visitor with a visitor id cookie
    await collect(gql.client, consent=["analytics"])
    assert VISITOR_COOKIE in gql.client.cookies
    # when they withdraw analytics on the banner and send a beacon
    response = await collect(gql.client, action=action, consent=[])
    # then the only cookie header deletes the visitor id
    [header] = set_cookies(response)
    assert header.startswith((f'{VISITOR_COOKIE}=""', f"{VISITOR_COOKIE}=;"))
    assert "Max-Age=0" in header
    assert "Secure" in header
    assert "Path=/" in header
    assert VISITOR_COOKIE not in gql.client.cookies
    # and an analytics event is not stored; a necessary one is, without the visitor id
    rows = await events()
    if action == "view":
        assert len(rows) == 1
    else:
        assert rows[-1].purpose == "security"
        assert rows[-1].visitor_digest is None


# --- signed-in customers ------------------------------------------------------------------


async def test_a_customer_with_analytics_consent_is_recorded_by_bearer_token(gql: GQL) -> None:
    # given a customer who consented to analytics at registration, signed in by token only
    token, customer = await signed_in_customer(gql, *ANALYTICS)
    gql.client.cookies.clear()
    # when their page sends a beacon that claims no consent
    response = await collect(gql.client, consent=[], headers={"authorization": f"Bearer {token}"})
    # then their consent record decides: stored with their id, no visitor id, no cookie
    assert response.json() == {"stored": True, "purpose": "analytics"}
    [event] = await events()
    assert UUID(str(event.customer_id)) == customer.id
    assert event.visitor_digest is None
    assert event.ip_full is None
    assert set_cookies(response) == []


async def test_a_customer_is_recognised_by_the_session_cookie(gql: GQL) -> None:
    # given a customer who consented to analytics and signed in (session cookie in the jar)
    _, customer = await signed_in_customer(gql, *ANALYTICS)
    # when a beacon arrives with the cookie only
    response = await collect(gql.client, consent=["analytics"])
    # then it is theirs, and no visitor cookie is set
    assert response.json() == {"stored": True, "purpose": "analytics"}
    [event] = await events()
    assert UUID(str(event.customer_id)) == customer.id
    assert event.visitor_digest is None
    assert set_cookies(response) == []


async def test_a_customers_beacon_consent_is_ignored_without_their_record(gql: GQL) -> None:
    # given a customer who never consented to analytics
    token, customer = await signed_in_customer(gql)
    # when the beacon claims analytics and ads consent
    response = await collect(
        gql.client,
        consent=["analytics", "marketing.ads"],
        headers={"authorization": f"Bearer {token}"},
    )
    # then nothing is stored, no cookie set
    assert response.json() == {"stored": False, "purpose": None}
    assert await events() == []
    assert set_cookies(response) == []
    # and their necessary events are still kept, with their id
    login_event = await collect(gql.client, action="logout", consent=["analytics"])
    assert login_event.json() == {"stored": True, "purpose": "security"}
    [event] = await events()
    assert UUID(str(event.customer_id)) == customer.id
    assert event.referrer == ""


async def test_withdrawing_analytics_consent_is_honoured_at_once(gql: GQL) -> None:
    # given a customer whose analytics events are recorded
    token, _ = await signed_in_customer(gql, *ANALYTICS)
    bearer = {"authorization": f"Bearer {token}"}
    assert (await collect(gql.client, headers=bearer)).json()["stored"] is True
    # when they withdraw analytics consent
    body = await gql(SET_CONSENT, {"purpose": "analytics", "granted": False}, token=token)
    assert body["data"]["setConsent"]["__typename"] == "ConsentSet"
    # then the very next beacon is not stored
    response = await collect(gql.client, page="/after", headers=bearer)
    assert response.json() == {"stored": False, "purpose": None}
    assert [e.page for e in await events()] == ["/rings"]


# --- advertising data and Global Privacy Control ------------------------------------------


@pytest.mark.parametrize(
    ("consent", "gpc", "page", "campaign"),
    [
        (["analytics", "marketing.ads"], False, AD_PAGE, "spring"),
        (["analytics", "marketing.ads"], True, STRIPPED_PAGE, ""),
        (["analytics"], False, STRIPPED_PAGE, ""),
        (["analytics"], True, STRIPPED_PAGE, ""),
    ],
    ids=["ads-consent", "ads-consent-with-gpc", "no-ads-consent", "no-ads-consent-with-gpc"],
)
async def test_ad_data_is_kept_only_with_ads_consent_and_no_gpc(
    gql: GQL, consent: list[str], gpc: bool, page: str, campaign: str
) -> None:
    # given an anonymous visitor with (or without) ads consent, sending GPC (or not)
    headers = {"sec-gpc": "1"} if gpc else {}
    # when a page with campaign and ad-click parameters sends a beacon
    response = await collect(
        gql.client, headers=headers, page=AD_PAGE, campaign="spring", consent=consent
    )
    # then the advertising data is kept only when allowed; other parameters always are
    assert response.json()["stored"] is True
    [event] = await events()
    assert (event.page, event.campaign) == (page, campaign)


@pytest.mark.parametrize(
    "param", ["utm_medium", "UTM_SOURCE", "gclid", "gbraid", "fbclid", "msclkid", "ttclid"]
)
async def test_every_ad_click_parameter_is_stripped_without_ads_consent(
    gql: GQL, param: str
) -> None:
    await collect(gql.client, page=f"/rings?{param}=x1&size=7", consent=["analytics"])
    [event] = await events()
    assert event.page == "/rings?size=7"


async def test_a_necessary_event_strips_ad_data_too(gql: GQL) -> None:
    await collect(gql.client, page=AD_PAGE, action="checkout", campaign="spring")
    [event] = await events()
    assert (event.page, event.campaign) == (STRIPPED_PAGE, "")


async def test_a_customers_ads_consent_keeps_ad_data_unless_gpc(gql: GQL) -> None:
    # given a customer who consented to analytics and personalised advertising
    token, customer = await signed_in_customer(gql, *ANALYTICS, *ADS)
    bearer = {"authorization": f"Bearer {token}"}
    # when a beacon arrives without GPC, then one with it
    await collect(gql.client, headers=bearer, page=AD_PAGE, campaign="spring", consent=[])
    await collect(
        gql.client,
        headers={**bearer, "sec-gpc": "1"},
        page=AD_PAGE,
        campaign="spring",
        consent=["marketing.ads"],
    )
    # then the ad data is kept the first time only
    first, second = await events()
    assert (first.page, first.campaign) == (AD_PAGE, "spring")
    assert (second.page, second.campaign) == (STRIPPED_PAGE, "")
    # and the signal was recorded as an opt-out
    records = await ConsentRecord.filter(customer_id=customer.id, source="gpc")
    assert [(r.purpose, r.granted) for r in records] == [("marketing.ads", False)]


async def test_gpc_from_a_customer_on_collect_records_one_opt_out(gql: GQL) -> None:
    # given a customer without analytics consent who consented to ads
    token, customer = await signed_in_customer(gql, *ADS)
    headers = {"authorization": f"Bearer {token}", "sec-gpc": "1"}
    # when their browser sends beacons with Sec-GPC: 1 (not stored: no analytics consent)
    for _ in range(2):
        response = await collect(gql.client, headers=headers)
        assert response.json() == {"stored": False, "purpose": None}
    # then one opt-out of marketing.ads is recorded, with source gpc
    records = await ConsentRecord.filter(customer_id=customer.id, source="gpc")
    assert [(r.purpose, r.granted) for r in records] == [("marketing.ads", False)]
    # and logged once, as the customer's consent event
    [audit] = await AuditEvent.filter(event="consent", operation="gpc")
    assert (audit.actor_kind, audit.actor_id, audit.subject_id, audit.decision) == (
        "customer",
        str(customer.id),
        str(customer.id),
        "allow",
    )
    assert await events() == []


async def test_gpc_from_an_anonymous_visitor_records_no_consent(gql: GQL) -> None:
    await collect(gql.client, headers={"sec-gpc": "1"}, consent=["analytics"])
    assert await ConsentRecord.all().count() == 0
    assert await AuditEvent.filter(event="consent").count() == 0


# --- attaching a visitor's events on sign-in ----------------------------------------------


async def test_sign_in_attaches_the_visitors_events_with_analytics_consent(
    gql: GQL, app: Any
) -> None:
    # given a customer with analytics consent
    await register(gql, consents=ANALYTICS)
    gql.client.cookies.clear()
    # and, anonymous, they browse with analytics accepted in this browser
    await collect(gql.client, page="/rings", consent=["analytics"])
    await collect(gql.client, page="/rings/1", consent=["analytics"])
    assert VISITOR_COOKIE in gql.client.cookies
    # and another visitor browses elsewhere
    async with client_at(app, "198.51.100.9") as other:
        await collect(other, page="/other", consent=["analytics"])
    # when they sign in in this browser
    await login(gql)
    customer = await Customer.get()
    # then their events become theirs; the other visitor's stay anonymous
    owners = {e.page: e.customer_id for e in await events()}
    assert {p: UUID(str(c)) if c else None for p, c in owners.items()} == {
        "/rings": customer.id,
        "/rings/1": customer.id,
        "/other": None,
    }


async def test_sign_in_attaches_nothing_without_analytics_consent(gql: GQL) -> None:
    # given a customer who never consented to analytics
    await register(gql)
    gql.client.cookies.clear()
    # and, anonymous, they browse with analytics accepted on the banner
    await collect(gql.client, consent=["analytics"])
    assert VISITOR_COOKIE in gql.client.cookies
    # when they sign in in this browser
    await login(gql)
    # then the events stay anonymous
    [event] = await events()
    assert event.customer_id is None
    assert event.visitor_digest


# --- browser, OS, device type and language ------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "browser", "os", "device_type"),
    [
        (CHROME_WINDOWS, "Chrome 124", "Windows", "desktop"),
        (FIREFOX_MAC, "Firefox 125", "Mac OS X", "desktop"),
        (IPHONE, "Mobile Safari 17", "iOS", "mobile"),
        (IPAD, "Mobile Safari 17", "iOS", "tablet"),
        (ANDROID_PHONE, "Chrome Mobile 124", "Android", "mobile"),
        (ANDROID_TABLET, "Chrome 124", "Android", "tablet"),
        (GOOGLEBOT, "Googlebot 2", "Other", "bot"),
        ("", "", "", ""),
    ],
    ids=[
        "chrome-windows",
        "firefox-mac",
        "iphone",
        "ipad",
        "android",
        "android-tablet",
        "bot",
        "none",
    ],
)
async def test_browser_os_and_device_come_from_the_user_agent(
    gql: GQL, user_agent: str, browser: str, os: str, device_type: str
) -> None:
    await collect(gql.client, headers={"user-agent": user_agent}, consent=["analytics"])
    [event] = await events()
    assert (event.browser, event.os, event.device_type) == (browser, os, device_type)


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr-CH"),
        ("en;q=0.5, de", "de"),
        ("*", ""),
        ("*, it;q=0.1", "it"),
        ("garbage!!", ""),
        ("en;q=abc, pt-BR;q=0.2", "pt-BR"),
        ("", ""),
        pytest.param("de;q=0", "", id="q=0-means-not-acceptable"),
        pytest.param("de;q=0, fr;q=0.1", "fr", id="q=0-never-wins"),
    ],
)
async def test_the_language_is_the_preferred_accept_language(
    gql: GQL, accept_language: str, language: str
) -> None:
    await collect(gql.client, headers={"accept-language": accept_language}, consent=["analytics"])
    [event] = await events()
    assert event.language == language
