"""Where a browser's request comes from, by the headers browsers send: one spelling of an
origin, and the rule that decides whether a POST comes from one of our own pages (beacons,
the export download button)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str | None:
    """The origin of an http(s) URL spelt as a browser's `Origin` header spells it (lower
    case, `scheme://host[:port]`, no default port, no user or path), or None."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:  # a port out of range, a malformed IPv6 host
        return None
    if parts.scheme not in _DEFAULT_PORTS or not host or not url.isascii():
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (
        f":{port}" if port is not None and port != _DEFAULT_PORTS[parts.scheme] else ""
    )


def from_allowed_page(headers: Mapping[str, str], allowed: frozenset[str]) -> bool:
    """Whether a POST comes from a page of one of the `allowed` origins, by what browsers send:

    - `Origin`, when present, decides (every current browser sends it on a POST). `null`
      (a sandboxed frame, or a page under `Referrer-Policy: no-referrer`) is accepted only
      with `Sec-Fetch-Site: same-origin`, the browser's word that the page is our own;
    - else `Sec-Fetch-Site: cross-site` is refused, and a `Referer` must be from an allowed
      origin (older browsers send a Referer but no Origin);
    - else only `Sec-Fetch-Site: same-origin`, or no such header at all, is accepted.

    A request with none of the three is not a browser acting for some page: a program, which
    could set any of them anyway, so refusing it would protect nothing."""
    origin = headers.get("origin")
    site = headers.get("sec-fetch-site")
    if origin is not None:
        return origin in allowed or (origin == "null" and site == "same-origin")
    if site == "cross-site":
        return False
    referer = headers.get("referer")
    if referer is not None:
        return origin_of(referer) in allowed
    return site in (None, "same-origin")
