"""A small HTTP GET for the auditor's tools (`python -m verifier witness`), on the
standard library's urllib only, so that the verifier package keeps to Python and
`cryptography`.

Every failure (no connection, a timeout, a status other than 200, an answer larger than
the limit) is one `FetchError` with a message for a person, so that a caller can turn it
into an exit status rather than a traceback."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_TIMEOUT = 15.0
DEFAULT_LIMIT = 1 << 20
"""No answer of the log's published interface is anywhere near 1 MiB."""


class FetchError(Exception):
    """A GET that gave no usable answer; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def join(base: str, path: str) -> str:
    """`base` (the log's URL, with or without a trailing slash) followed by `path`."""
    return base.rstrip("/") + path


def check_url(url: str) -> str:
    """`url` if it is an http or https URL with a host; FetchError otherwise."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise FetchError(f"not a URL: {url!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"not an http or https URL: {url!r}")
    return url


def get(url: str, *, timeout: float = DEFAULT_TIMEOUT, limit: int = DEFAULT_LIMIT) -> bytes:
    """The body of a 200 answer to GET `url`, at most `limit` bytes. Raises FetchError."""
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked to be http(s))
        check_url(url), headers={"User-Agent": "custos-verifier", "Cache-Control": "no-cache"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            status = answer.status
            body: bytes = answer.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url} answered HTTP {exc.code}", exc.code) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot reach {url}: {exc.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise FetchError(f"cannot read {url}: {exc or type(exc).__name__}") from None
    if status != 200:
        raise FetchError(f"{url} answered HTTP {status}", status)
    if len(body) > limit:
        raise FetchError(f"{url} answered more than {limit} bytes")
    return body
