"""The pages the privacy centre serves, by their name under its path (api/mail/links.py
names every page a mail or a page links to; the ones below are built)."""

from __future__ import annotations

from dataclasses import dataclass

from api.mail.links import Page


@dataclass(frozen=True, slots=True)
class CentrePage:
    """A page: its template (templates/NAME.html), its module (static/NAME.js), the
    catalogue key of its title, and whether it needs a signed-in customer (else the server
    sends the reader to sign in first)."""

    page: Page
    title: str
    signed_in: bool = False

    @property
    def name(self) -> str:
        return self.page.value


PAGES: dict[str, CentrePage] = {
    p.name: p
    for p in (
        CentrePage(Page.SIGN_UP, "sign-up.title"),
        CentrePage(Page.VERIFY_EMAIL, "verify-email.title"),
        CentrePage(Page.SIGN_IN, "sign-in.title"),
        CentrePage(Page.PRIVACY_POLICY, "privacy-policy.title"),
        CentrePage(Page.PROFILE, "profile.title", signed_in=True),
        CentrePage(Page.FORGOT_PASSWORD, "forgot-password.title"),
        CentrePage(Page.RESET_PASSWORD, "reset-password.title"),
        CentrePage(Page.CONSENTS, "consents.title", signed_in=True),
        CentrePage(Page.RIGHTS, "rights.title", signed_in=True),
        CentrePage(Page.ACCESS_LOG, "access-log.title", signed_in=True),
    )
}
"""Every page of `Page`, served here unless the shop serves it itself (CUSTOS_PAGE_URLS)."""
