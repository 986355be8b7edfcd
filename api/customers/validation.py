"""Validation and normalisation of customer input. Every problem names its field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from api.customers.countries import ISO_3166_ALPHA2, WITHOUT_POSTAL_CODES
from api.errors import FieldProblem, InputInvalid
from api.security.passwords import password_problem
from authz.registry import PURPOSES

_POSTAL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 \-]{0,14}[A-Za-z0-9]?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class AddressData:
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str


@dataclass
class Problems:
    """Collects every problem of one input, then raises them together."""

    items: list[FieldProblem] = field(default_factory=list)

    def add(self, field_name: str, message: str, code: str = "VALIDATION") -> None:
        self.items.append(FieldProblem(field_name, code, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise InputInvalid(self.items)


def email(value: str, problems: Problems, field_name: str = "email") -> str:
    """Normalised (IDNA domain, Unicode NFC) and lower-cased; we treat addresses as
    case-insensitive, as every mailbox provider does."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        problems.add(field_name, f"Not a valid email address: {exc}")
        return ""
    return result.normalized.lower()


def password(value: str, problems: Problems, field_name: str = "password") -> str:
    if (problem := password_problem(value)) is not None:
        code, message = problem
        problems.add(field_name, message, code)
    return value


def phone(value: str, country: str | None, problems: Problems, field_name: str = "phone") -> str:
    """E.164, read in the address's country when written without a country code."""
    if len(value) > 32:
        problems.add(field_name, "A phone number has at most 32 characters.")
        return ""
    try:
        number = phonenumbers.parse(value, country if country in ISO_3166_ALPHA2 else None)
    except phonenumbers.NumberParseException:
        problems.add(field_name, "Not a phone number; write it with its country code, e.g. +44.")
        return ""
    if not phonenumbers.is_valid_number(number):
        problems.add(field_name, "Not a valid phone number.")
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def text(value: str | None, *, max_len: int, required: bool, name: str, p: Problems) -> str:
    text = (value or "").strip()
    if required and not text:
        p.add(name, "This field is required.")
    elif len(text) > max_len:
        p.add(name, f"Use at most {max_len} characters.")
    elif _CONTROL.search(text):
        p.add(name, "Control characters are not allowed.")
    return text


def address(
    *,
    line1: str,
    line2: str | None,
    city: str,
    postal_code: str | None,
    country: str,
    problems: Problems,
    prefix: str = "address",
) -> AddressData:
    country_code = country.strip().upper()
    if country_code not in ISO_3166_ALPHA2:
        problems.add(f"{prefix}.country", "Use an ISO 3166-1 alpha-2 country code, e.g. GB.")
    postal = (postal_code or "").strip().upper()
    if not postal and country_code not in WITHOUT_POSTAL_CODES:
        problems.add(f"{prefix}.postalCode", "This field is required.")
    elif postal and not _POSTAL_CODE.match(postal):
        problems.add(f"{prefix}.postalCode", "Letters, digits, spaces and hyphens; 16 at most.")
    return AddressData(
        line1=text(line1, max_len=200, required=True, name=f"{prefix}.line1", p=problems),
        line2=text(line2, max_len=200, required=False, name=f"{prefix}.line2", p=problems),
        city=text(city, max_len=100, required=True, name=f"{prefix}.city", p=problems),
        postal_code=postal,
        country=country_code,
    )


def purpose(value: str, problems: Problems, field_name: str) -> str:
    if value not in PURPOSES:
        problems.add(field_name, f"Unknown purpose; known: {', '.join(sorted(PURPOSES))}.")
    elif not PURPOSES[value].consent_required:
        problems.add(field_name, "This purpose does not rest on consent.")
    return value
