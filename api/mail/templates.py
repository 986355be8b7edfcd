"""Transactional messages. They never carry marketing content."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from api.mail.outbox import Mail


def verify_email(*, public_url: str, token: str, hours: float) -> Mail:
    link = f"{public_url.rstrip('/')}/verify-email?token={quote(token)}"
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
    )


def already_registered(*, public_url: str) -> Mail:
    return Mail(
        kind="already_registered",
        subject="Someone tried to register with your email address",
        body=(
            "Someone, perhaps you, tried to create an account with this email address, "
            "which already has one. Nothing was changed.\n\n"
            f"If it was you, sign in at {public_url.rstrip('/')}/login.\n"
            "If it was not you, you can ignore this message.\n"
        ),
    )


def email_change_requested() -> Mail:
    return Mail(
        kind="email_change_notice",
        subject="Your account's email address is being changed",
        body=(
            "A change of the email address of your account was requested. It takes effect "
            "once the new address is confirmed. If this was not you, change your password.\n"
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


def policy_notice(*, public_url: str, version: str, effective_at: datetime, summary: str) -> Mail:
    """Advance notice of a material change of the privacy policy."""
    when = effective_at.astimezone(UTC)
    date = f"{when.day} {when:%B %Y} ({when:%H:%M} UTC)"
    link = f"{public_url.rstrip('/')}/privacy-policy"
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
