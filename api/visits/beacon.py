"""The beacon a frontend sends to `POST /collect`: parsed strictly, cleaned before use.

    {"page": "/rings?sort=price", "action": "view", "referrer": "https://search.example/",
     "campaign": "spring-sale", "consent": ["analytics"]}

`page` and `action` are required; `consent` is the anonymous visitor's cookie-banner choice
(ignored for a signed-in customer, whose consent records decide).

It is accepted only from the shop's own pages (api/security/origins.py): a `text/plain` beacon is
a "simple" request a browser sends cross-site without asking, so without that check any site
could make its visitors' browsers plant events, with their IPs and cookies, in our records."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from api.hygiene.rules import Rule
from api.hygiene.rules import problem as text_problem
from authz.registry import CONSENT_PURPOSES

MAX_BYTES = 8 * 1024
_ACTION = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_FIELDS = {"page": 512, "action": 64, "referrer": 512, "campaign": 200}
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
# Query parameters that identify an ad click or campaign: advertising-related, so dropped
# unless personalised advertising is allowed (consent, and no Global Privacy Control).
_AD_PARAMS = re.compile(r"^(utm_[a-z]+|gclid|gbraid|wbraid|dclid|fbclid|msclkid|ttclid|twclid)$")


class BeaconError(ValueError):
    """A malformed beacon: nothing is stored."""


@dataclass(frozen=True, slots=True)
class Beacon:
    page: str
    action: str
    referrer: str
    campaign: str
    consent: frozenset[str]


def _text(data: dict[str, object], name: str, *, required: bool) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BeaconError(f"`{name}` must be a non-empty string.")
    value = value.strip()
    if text_problem(value, Rule(_FIELDS[name])) is not None:  # the GraphQL edge's own rule
        raise BeaconError(f"`{name}` is too long or holds control characters.")
    return value


def parse_beacon(body: bytes) -> Beacon:
    """The beacon, or BeaconError naming what is wrong (unknown fields are refused, so
    nothing unexpected is ever stored)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BeaconError("The body must be a JSON object.") from exc
    if not isinstance(data, dict):
        raise BeaconError("The body must be a JSON object.")
    unknown = set(data) - {*_FIELDS, "consent"}
    if unknown:
        raise BeaconError(f"Unknown field(s): {', '.join(sorted(unknown))[:200]}.")
    action = _text(data, "action", required=True)
    if not _ACTION.match(action):
        raise BeaconError("`action` must be lower-case letters, digits and _.:- .")
    consent = data.get("consent", [])
    if not isinstance(consent, list) or not all(isinstance(c, str) for c in consent):
        raise BeaconError("`consent` must be a list of purposes.")
    if set(consent) - CONSENT_PURPOSES:
        raise BeaconError("`consent` names an unknown purpose.")
    return Beacon(
        page=_text(data, "page", required=True),
        action=action,
        referrer=_text(data, "referrer", required=False),
        campaign=_text(data, "campaign", required=False),
        consent=frozenset(consent),
    )


def clean_page(page: str, *, ads_allowed: bool) -> str:
    """The page without its fragment, and without ad-click parameters unless allowed."""
    parts = urlsplit(page)
    query = parts.query
    if not ads_allowed and query:
        kept = [
            (k, v)
            for k, v in parse_qsl(query, keep_blank_values=True)
            if not _AD_PARAMS.match(k.lower())
        ]
        query = urlencode(kept)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))[:512]


def clean_referrer(referrer: str) -> str:
    """Origin and path only: another site's query string may hold anything (searches,
    addresses), so it is never kept."""
    try:
        parts = urlsplit(referrer)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port out of range, a malformed IPv6 host
        return ""
    if parts.scheme not in {"http", "https"} or not host:
        return ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{port}" if port else host  # never the user or password part
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))[:512]


def first_language(accept_language: str | None) -> str:
    """The preferred language tag of an Accept-Language header (highest q; q=0 means
    "not acceptable"), or ""."""
    best, best_q = "", -1.0
    for item in (accept_language or "")[:500].split(","):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and _LANGUAGE.match(tag) and q > 0 and q > best_q:
            best, best_q = tag, q
    return best[:35]
