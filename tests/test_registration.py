"""Registration collects exactly the policy's contact data, validated and normalised."""

from __future__ import annotations

from typing import Any

import pytest

from models import ConsentRecord, Customer, EmailToken, OutboxMessage
from tests.conftest import GQL, REGISTER, mails, register, registration


async def test_register_normalises_and_stores_contact_data(gql: GQL) -> None:
    # given a registration with mixed-case email, a local phone number and consents
    result = await register(
        gql,
        email="  Jane.Doe@EXAMPLE.com ",
        phone="020 7946 0958",
        address={
            "line1": "221B Baker Street",
            "line2": "Flat 2",
            "city": "London",
            "postalCode": "nw1 6xe",
            "country": "gb",
        },
        consents=[
            {"purpose": "analytics", "granted": True},
            {"purpose": "marketing.email", "granted": False},
        ],
    )
    # then it is accepted and stored normalised
    assert result["__typename"] == "RegistrationAccepted"
    customer = await Customer.get(email="jane.doe@example.com")
    assert customer.phone == "+442079460958"
    assert (customer.address_line1, customer.address_line2, customer.address_city) == (
        "221B Baker Street",
        "Flat 2",
        "London",
    )
    assert customer.address_postal_code == "NW1 6XE"
    assert customer.address_country == "GB"
    assert customer.email_verified_at is None
    assert customer.password_hash.startswith("$argon2id$")
    consents = await ConsentRecord.filter(customer_id=customer.id).order_by("purpose")
    assert [(c.purpose, c.granted, c.source) for c in consents] == [
        ("analytics", True, "registration"),
        ("marketing.email", False, "registration"),
    ]
    assert consents[0].ip_truncated == "203.0.113.0/24"
    # and a verification mail waits in the outbox, bound to the customer
    [mail] = await mails("verify_email")
    assert mail.recipient == "jane.doe@example.com"
    assert mail.customer_id == customer.id
    assert mail.status == "pending"
    assert await EmailToken.filter(customer_id=customer.id).count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"email": "not-an-email"}, "email", "VALIDATION"),
        ({"email": "a@b"}, "email", "VALIDATION"),
        ({"email": "x" * 300 + "@example.com"}, "email", "VALIDATION"),
        ({"password": "short1!"}, "password", "WEAK_PASSWORD"),
        ({"password": "password123"}, "password", "WEAK_PASSWORD"),
        ({"password": "Qwertyuiop"}, "password", "WEAK_PASSWORD"),
        ({"password": "x" * 257}, "password", "VALIDATION"),
        ({"phone": "12"}, "phone", "VALIDATION"),
        ({"phone": "+44 20 7946"}, "phone", "VALIDATION"),
        ({"phone": "call me maybe"}, "phone", "VALIDATION"),
        ({"phone": "+" + "1" * 40}, "phone", "VALIDATION"),
        (
            {"address": {"line1": "", "city": "London", "postalCode": "NW1", "country": "GB"}},
            "address.line1",
            "VALIDATION",
        ),
        (
            {"address": {"line1": "1 Road", "city": " ", "postalCode": "NW1", "country": "GB"}},
            "address.city",
            "VALIDATION",
        ),
        (
            {
                "address": {
                    "line1": "1 Road",
                    "city": "London",
                    "postalCode": "NW1",
                    "country": "UK",
                }
            },
            "address.country",
            "VALIDATION",
        ),
        (
            {"address": {"line1": "1 Road", "city": "London", "country": "GB"}},
            "address.postalCode",
            "VALIDATION",
        ),
        (
            {
                "address": {
                    "line1": "1 Road",
                    "city": "London",
                    "postalCode": "<script>",
                    "country": "GB",
                }
            },
            "address.postalCode",
            "VALIDATION",
        ),
        (
            {
                "address": {
                    "line1": "x" * 201,
                    "city": "London",
                    "postalCode": "NW1",
                    "country": "GB",
                }
            },
            "address.line1",
            "VALIDATION",
        ),
        (
            {"consents": [{"purpose": "telepathy", "granted": True}]},
            "consents[0].purpose",
            "VALIDATION",
        ),
        (
            {"consents": [{"purpose": "service", "granted": True}]},
            "consents[0].purpose",
            "VALIDATION",
        ),
        (
            {
                "consents": [
                    {"purpose": "analytics", "granted": True},
                    {"purpose": "analytics", "granted": False},
                ]
            },
            "consents[1].purpose",
            "VALIDATION",
        ),
    ],
)
async def test_malformed_input_is_a_typed_error_naming_the_field(
    gql: GQL, overrides: dict[str, Any], field: str, code: str
) -> None:
    # when a registration has one bad field
    result = await register(gql, **overrides)
    # then the answer names that field with a code, and nothing is written
    assert result["__typename"] == "InputError"
    assert (result["field"], result["code"]) == (field, code)
    assert [f["field"] for f in result["fields"]] == [field]
    assert result["message"]
    assert await Customer.all().count() == 0
    assert await OutboxMessage.all().count() == 0
    assert await ConsentRecord.all().count() == 0


async def test_every_problem_is_reported_at_once(gql: GQL) -> None:
    result = await register(gql, email="nope", password="abc", phone="0")
    assert {f["field"] for f in result["fields"]} == {"email", "password", "phone"}
    assert await Customer.all().count() == 0


async def test_address_without_postal_code_in_a_country_without_them(gql: GQL) -> None:
    result = await register(
        gql,
        phone="+852 2123 4567",
        address={"line1": "1 Queen's Road", "city": "Hong Kong", "country": "HK"},
    )
    assert result["__typename"] == "RegistrationAccepted"
    assert (await Customer.get()).address_postal_code == ""


async def test_unknown_input_field_is_refused_naming_it(gql: GQL) -> None:
    data = registration()
    data["favouriteColour"] = "blue"
    body = await gql(REGISTER, {"input": data})
    assert body.get("data") is None
    [error] = body["errors"]
    assert "favouriteColour" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert await Customer.all().count() == 0


async def test_oversized_body_is_refused_with_413(gql: GQL) -> None:
    data = registration(
        address={"line1": "x" * 70_000, "city": "London", "postalCode": "NW1", "country": "GB"}
    )
    response = await gql.raw(REGISTER, {"input": data})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await Customer.all().count() == 0


async def test_duplicate_registration_does_not_reveal_the_account(gql: GQL) -> None:
    # given an existing account
    first = await register(gql)
    original = await Customer.get()
    # when someone registers the same address again (in another case, another password)
    second = await register(
        gql,
        email="JANE.DOE@example.com",
        password="another fine password",
        phone="+33 1 23 45 67 89",
    )
    # then the answer is identical, nothing about the account changed,
    assert second == first
    assert await Customer.all().count() == 1
    again = await Customer.get()
    assert (again.password_hash, again.phone) == (original.password_hash, original.phone)
    # and the owner is told by mail instead of the stranger being told on screen
    [notice] = await mails("already_registered")
    assert notice.recipient == "jane.doe@example.com"
    assert notice.customer_id == original.id
    assert len(await mails("verify_email")) == 1


async def test_password_is_any_unicode_never_truncated_or_case_folded(gql: GQL) -> None:
    from tests.conftest import LOGIN

    long_password = "ü" * 120 + "𝄞 emoji 🔐 end" + "z" * 100  # > 72 bytes (bcrypt's limit)
    assert len(long_password) <= 256
    assert (await register(gql, password=long_password))["__typename"] == "RegistrationAccepted"
    ok = await gql(LOGIN, {"email": "jane.doe@example.com", "password": long_password})
    assert ok["data"]["login"]["__typename"] == "LoginSuccess"
    for wrong in (long_password[:-1] + "Z", long_password.upper(), long_password[:200]):
        body = await gql(LOGIN, {"email": "jane.doe@example.com", "password": wrong})
        assert body["data"]["login"]["__typename"] == "InvalidCredentials"


async def test_passwords_of_8_and_256_characters_are_accepted(gql: GQL) -> None:
    assert (await register(gql, password="Zq8#vLm2"))["__typename"] == "RegistrationAccepted"
    result = await register(gql, email="b@example.com", password="k" * 255 + "!")
    assert result["__typename"] == "RegistrationAccepted"
    assert await Customer.all().count() == 2


async def test_common_password_list_has_at_least_10000_entries() -> None:
    from api.security.passwords import common_passwords

    assert len(common_passwords()) >= 10_000
    assert "password" in common_passwords()
