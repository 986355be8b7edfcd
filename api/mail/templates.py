"""Transactional messages. They never carry marketing content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from api.mail.links import Page, page_url
from api.mail.outbox import Mail
from api.settings import Settings


def verify_email(*, settings: Settings, token: str, hours: float) -> Mail:
    link = page_url(settings, Page.VERIFY_EMAIL, token=token)
    return Mail(
        kind="verify_email",
        subject="Confirm your email address",
        body=(
            "Please confirm this email address for your account.\n\n"
            f"Open this link: {link}\n"
            f"or use this code with the verifyEmail operation: {token}\n\n"
            f"It works once and expires in {hours:g} hours. "
            "If you did not ask for this, ignore this message.\n"
        ),
        valid_for=timedelta(hours=hours),
    )


def already_registered(*, settings: Settings) -> Mail:
    return Mail(
        kind="already_registered",
        subject="Someone tried to register with your email address",
        body=(
            "Someone, perhaps you, tried to create an account with this email address, "
            "which already has one. Nothing was changed.\n\n"
            f"If it was you, sign in at {page_url(settings, Page.SIGN_IN)}\n"
            "If it was not you, you can ignore this message.\n"
        ),
    )


def email_change_requested() -> Mail:
    return Mail(
        kind="email_change_notice",
        subject="Your account's email address is being changed",
        body=(
            "A change of the email address of your account was requested. It takes effect "
            "once the new address is confirmed. If this was not you, change your password: "
            "that also cancels the change. To cancel it without changing your password, use "
            "your profile in the privacy centre.\n"
        ),
    )


def email_change_collision() -> Mail:
    return Mail(
        kind="email_change_collision",
        subject="Someone tried to move an account to your email address",
        body=(
            "Someone tried to change another account's email address to this one, which "
            "already has an account. Nothing was changed. You can ignore this message.\n"
        ),
    )


def password_changed() -> Mail:
    return Mail(
        kind="password_changed",
        subject="Your password was changed",
        body=(
            "The password of your account was changed and your other sessions were signed out. "
            "If this was not you, contact customer care at once.\n"
        ),
    )


def policy_notice(
    *, settings: Settings, version: str, effective_at: datetime, summary: str
) -> Mail:
    """Advance notice of a material change of the privacy policy."""
    when = effective_at.astimezone(UTC)
    date = f"{when.day} {when:%B %Y} ({when:%H:%M} UTC)"
    link = page_url(settings, Page.PRIVACY_POLICY)
    return Mail(
        kind="policy_notice",
        subject="Our privacy policy is changing",
        body=(
            f"We are changing our privacy policy. Version {version} takes effect on {date}.\n\n"
            f"What changes:\n{summary.strip()}\n\n"
            f"Read the new policy before it takes effect: {link}\n\n"
            "Where a change concerns something you consented to, we will ask for your "
            "consent again; until you give it, we will not use your data for that purpose.\n"
        ),
    )


def _follow(settings: Settings) -> str:
    """The line that sends the customer to the rights page, where requests are followed."""
    return f"Follow your requests on your privacy page: {page_url(settings, Page.RIGHTS)}\n"


def rights_code(*, settings: Settings, kind: str, request_id: str, code: str, minutes: int) -> Mail:
    return Mail(
        kind="rights_code",
        subject="Confirm your request about your personal data",
        body=(
            f"We received a request to {kind_phrase(kind)} the personal data of this account.\n\n"
            f"To confirm it is yours, use this code with the verifyRightsRequest operation:\n\n"
            f"    request: {request_id}\n    code: {code}\n\n"
            "or enter the code on your privacy page, where the request waits for it: "
            f"{page_url(settings, Page.RIGHTS)}\n\n"
            f"It expires in {minutes} minutes and allows 5 attempts. If you did not ask for "
            "this, ignore this message: nothing happens without the code.\n"
        ),
        valid_for=timedelta(minutes=minutes),
    )


def rights_received(*, settings: Settings, kind: str, request_id: str, due: str) -> Mail:
    return Mail(
        kind="rights_received",
        subject="We received your request",
        body=(
            f"Your request to {kind_phrase(kind)} your personal data ({request_id}) is "
            f"confirmed. We will answer by {due}.\n\n{_follow(settings)}"
        ),
    )


def rights_extended(*, settings: Settings, request_id: str, due: str, reason: str) -> Mail:
    return Mail(
        kind="rights_extended",
        subject="We need more time for your request",
        body=(
            f"We need more time to answer your request {request_id}. The new date is {due}.\n\n"
            f"Why: {reason}\n\n{_follow(settings)}"
        ),
    )


def rights_decided(*, settings: Settings, request_id: str, approved: bool, reason: str) -> Mail:
    if approved:
        body = f"Your request {request_id} was approved; we are working on it.\n"
    else:
        body = (
            f"We cannot carry out your request {request_id}.\n\nWhy: {reason}\n\n"
            "You may complain to your data protection authority.\n"
        )
    return Mail(
        kind="rights_decided", subject="About your request", body=f"{body}\n{_follow(settings)}"
    )


def rights_completed(
    *, settings: Settings, request_id: str, summary: str, erased: bool = False
) -> Mail:
    """`erased`: the last message to an erased account (its address is forgotten once sent);
    it has no link, as nobody can sign in to the account any more."""
    follow = "" if erased else f"\n{_follow(settings)}"
    return Mail(
        kind="rights_erased" if erased else "rights_completed",
        subject="Your request is complete",
        body=f"Your request {request_id} is complete.\n\n{summary}\n{follow}",
    )


def kind_phrase(kind: str) -> str:
    return {"access": "access", "rectification": "correct", "erasure": "erase"}.get(kind, kind)


def long_utc(when: datetime) -> str:
    """A moment as people read it whatever their locale, e.g. "8 January 2026 at 12:00 UTC"."""
    when = when.astimezone(UTC)
    return f"{when.day} {when:%B %Y} at {when:%H:%M} UTC"


def export_ready(*, settings: Settings, token: str, expires_at: datetime) -> Mail:
    """The answer to an access request: a link to a page whose button downloads the export,
    once (opening the link uses nothing up: mail scanners open links too). The token is
    only here: the privacy page says the link was mailed and until when it works."""
    link = f"{settings.public_url.rstrip('/')}/exports/{quote(token)}"
    return Mail(
        kind="export_ready",
        subject="Your copy of your personal data is ready",
        body=(
            "The copy of the personal data we hold about you, which you asked for, is ready "
            "to download as one JSON file.\n\n"
            f'Open this link, then press the button "Download your data": {link}\n\n'
            f"The link works once and until {long_utc(expires_at)}; the file is deleted from "
            "our systems once downloaded. Keep it somewhere safe: it holds your personal data. "
            "If the link has expired, you can ask again.\n\n"
            f"{_follow(settings)}"
        ),
        expires_at=expires_at,
    )


def password_reset(*, settings: Settings, token: str, minutes: int) -> Mail:
    """A link to the page where whoever reads this mailbox chooses a new password
    (api/recovery/service.py)."""
    link = page_url(settings, Page.RESET_PASSWORD, token=token)
    return Mail(
        kind="password_reset",
        subject="Choose a new password",
        body=(
            "Someone, perhaps you, asked to reset the password of the account that uses this "
            "email address.\n\n"
            f"To choose a new password, open this link: {link}\n"
            f"or use this code with the resetPassword operation: {token}\n\n"
            f"It works once and for {minutes} minutes. Choosing a new password signs the "
            "account out everywhere. If you did not ask for this, ignore this message: your "
            "password stays as it is.\n"
        ),
        valid_for=timedelta(minutes=minutes),
    )
