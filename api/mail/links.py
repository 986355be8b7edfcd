"""The addresses of the privacy centre's pages, as mail links and redirects use them: one
place, built from the settings, so that every link in every mail lands on a page that
exists. By default the pages are Custos's own, under `CUSTOS_PRIVACY_CENTRE_PATH` of
`CUSTOS_PUBLIC_URL`; a shop that serves a page itself sets its address in
`CUSTOS_PAGE_URLS` (a JSON object, page name to absolute URL), and mails link there."""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlencode

from api.settings import Settings


class Page(StrEnum):
    """Every page a mail or another page links to (its path under the privacy centre)."""

    SIGN_IN = "sign-in"
    SIGN_UP = "sign-up"
    VERIFY_EMAIL = "verify-email"
    FORGOT_PASSWORD = "forgot-password"  # noqa: S105 (a page name)
    RESET_PASSWORD = "reset-password"  # noqa: S105 (a page name)
    PROFILE = "profile"
    CONSENTS = "consents"
    PRIVACY_POLICY = "privacy-policy"
    RIGHTS = "rights"
    ACCESS_LOG = "access-log"


def page_url(settings: Settings, page: Page, **query: str) -> str:
    """The absolute address of `page`, with `query` (a token, say) in its query string."""
    base = settings.page_urls.get(page.value)
    if base is None:
        root = settings.public_url.rstrip("/") + "/" + settings.privacy_centre_path.strip("/")
        base = f"{root.rstrip('/')}/{page.value}"
    if not query:
        return base
    return f"{base}{'&' if '?' in base else '?'}{urlencode(query)}"
