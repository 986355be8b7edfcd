"""The verification mail again (issue 18): `resendVerificationEmail` mails a fresh link to an
address an account waits to have confirmed (its own, unverified, or a pending change to it)
and answers every address alike, with the same statements, under the mail limits
(api/recovery/service.py). Earlier links keep working until they expire."""

from __future__ import annotations

from typing import Any

import pytest

from models import Customer, EmailToken
from tests.conftest import (
    GQL,
    VERIFY_EMAIL,
    login,
    mails,
    register,
    verification_token,
)
from tests.test_input_rules import post, refused, row_counts
from tests.test_no_oracle import statements

EMAIL = "jane.doe@example.com"
RESEND = """
mutation($e: String!) { resendVerificationEmail(email: $e) {
  __typename
  ... on VerificationResent { linkValidHours }
  ... on InputError { code field message } } }
"""
ACCEPTED = {
    "data": {
        "resendVerificationEmail": {
            "__typename": "VerificationResent",
            "linkValidHours": 48.0,
        }
    }
}
CHANGE_EMAIL = (
    "mutation ($email: String!) { updateProfile(input: "
    '{ email: $email, currentPassword: "correct horse battery staple" }) '
    "{ __typename ... on ProfileUpdated { emailChangePending } } }"
)


async def resend(gql: GQL, email: str = EMAIL) -> dict[str, Any]:
    return await gql(RESEND, {"e": email})


async def verify(gql: GQL, token: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gql(VERIFY_EMAIL, {"token": token}))["data"]["verifyEmail"]
    gql.client.cookies.clear()
    return result


async def verified(gql: GQL, email: str = EMAIL) -> None:
    """A registered customer whose address is confirmed."""
    await register(gql, email=email)
    assert (await verify(gql, await verification_token(email)))["__typename"] == "EmailVerified"


async def test_an_unverified_address_gets_a_fresh_link(gql: GQL) -> None:
    # given Jane, registered, whose first link is lost
    await register(gql)
    first = await verification_token(EMAIL)
    # when she asks for the mail again, writing her address differently
    assert await resend(gql, " Jane.Doe@EXAMPLE.com ") == ACCEPTED
    # then a second mail carries another link, which confirms her address
    assert len(await mails("verify_email", EMAIL)) == 2
    fresh = await verification_token(EMAIL)
    assert fresh != first
    confirmed = await verify(gql, fresh)
    assert confirmed == {
        "__typename": "EmailVerified",
        "customer": {"email": EMAIL, "emailVerified": True},
    }
    # and the earlier link, unused, still works until it expires (confirming twice is no change)
    assert (await verify(gql, first))["__typename"] == "EmailVerified"


async def test_a_verified_address_gets_nothing(gql: GQL) -> None:
    # given Jane, whose address is confirmed
    await verified(gql)
    tokens = await EmailToken.all().count()
    # when the mail is asked for again
    answer = await resend(gql)
    # then the answer is the usual one, and no mail or token was made
    assert answer == ACCEPTED
    assert len(await mails("verify_email", EMAIL)) == 1
    assert await EmailToken.all().count() == tokens


async def test_an_unknown_address_gets_nothing(gql: GQL) -> None:
    # when the mail is asked for an address without an account
    answer = await resend(gql, "nobody@example.com")
    # then the answer is the usual one, and nothing was mailed or stored
    assert answer == ACCEPTED
    assert await mails() == []
    assert await EmailToken.all().count() == 0


async def test_a_pending_change_gets_a_fresh_link_to_the_new_address(gql: GQL) -> None:
    # given Jane, confirmed, who asked to move her account to a new address
    await verified(gql)
    session = await login(gql)
    gql.client.cookies.clear()
    new = "jane.new@example.com"
    await gql(CHANGE_EMAIL, {"email": new}, token=session)
    first = await verification_token(new)
    # when the mail is asked for again for the new address, and for the old one
    assert await resend(gql, new) == ACCEPTED
    assert await resend(gql) == ACCEPTED
    # then only the new address got another link, which moves the account
    assert len(await mails("verify_email", new)) == 2
    assert len(await mails("verify_email", EMAIL)) == 1
    fresh = await verification_token(new)
    assert fresh != first
    assert (await verify(gql, fresh))["customer"] == {"email": new, "emailVerified": True}
    assert (await Customer.get()).pending_email is None


async def test_a_pending_change_to_a_taken_address_gets_nothing(gql: GQL) -> None:
    # given Jane, who asked to move to an address another (unverified) account has
    await register(gql, email="taken@example.com")
    await verified(gql)
    session = await login(gql)
    gql.client.cookies.clear()
    await gql(CHANGE_EMAIL, {"email": "taken@example.com"}, token=session)
    jane = await Customer.get(email=EMAIL)
    before = await EmailToken.filter(customer_id=jane.id).count()
    # when the mail is asked for again for the taken address
    assert await resend(gql, "taken@example.com") == ACCEPTED
    # then its own account, waiting for it, gets the link; Jane's change gets none
    mailed = await mails("verify_email", "taken@example.com")
    assert [m.customer_id for m in mailed] == [mailed[0].customer_id] * 2
    assert mailed[0].customer_id != jane.id
    assert await EmailToken.filter(customer_id=jane.id).count() == before


async def test_every_address_gets_the_same_answer_and_statements(
    gql: GQL, caplog: pytest.LogCaptureFixture
) -> None:
    # given an unverified account, a verified one, and first use done
    await register(gql)
    await verified(gql, "verified@example.com")
    await resend(gql, "warm-up@example.com")

    async def attempt(email: str) -> tuple[dict[str, Any], list[str]]:
        with statements(caplog) as seen:
            body = await resend(gql, email)
        return body, seen

    # when the mail is asked for each, and for an unknown address
    waiting, waiting_sql = await attempt(EMAIL)
    done, done_sql = await attempt("verified@example.com")
    unknown, unknown_sql = await attempt("nobody@example.com")
    # then the answers and the statements are the same, writes included
    assert waiting == done == unknown == ACCEPTED
    assert waiting_sql == done_sql == unknown_sql
    assert any(s.startswith('INSERT INTO "email_token"') for s in unknown_sql)
    # and only the waiting address got a second mail
    assert len(await mails("verify_email", EMAIL)) == 2
    assert len(await mails("verify_email", "verified@example.com")) == 1
    assert await mails(recipient="nobody@example.com") == []


async def test_the_limit_drops_mails_not_answers(gql: GQL, settings: Any) -> None:
    # given Jane, registered (her first verification mail counts towards the limit)
    await register(gql)
    tokens = await EmailToken.all().count()
    limit = settings.mail_max_per_recipient
    # when the mail is asked for as many times as the limit allows mails of the kind
    answers = [await resend(gql) for _ in range(limit)]
    # then every answer is the same, one mail fewer was sent, and no token is left unmailed
    assert answers == [ACCEPTED] * limit
    assert len(await mails("verify_email", EMAIL)) == limit
    assert await EmailToken.all().count() == tokens + limit - 1


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("a\x00@example.com", id="nul"),
        pytest.param("a\ud800@example.com", id="surrogate"),
        pytest.param("a\x7f@example.com", id="control"),
        pytest.param("a" * 1_001, id="huge"),
    ],
)
async def test_hostile_strings_are_refused_before_anything_runs(gql: GQL, email: str) -> None:
    # given an account waiting for confirmation, and the state of every table
    await register(gql)
    before = await row_counts()
    # when the address carries NUL, a lone surrogate, a control character or too much
    body = await post(gql, RESEND, {"e": email})
    # then it is a typed VALIDATION error naming the argument, and nothing was written
    refused(body, "email")
    assert await row_counts() == before


@pytest.mark.parametrize("email", ["", "not an address", "x" * 300 + "@example.com"])
async def test_a_malformed_address_is_a_field_error(gql: GQL, email: str) -> None:
    # when the address is no address at all
    answer = (await resend(gql, email))["data"]["resendVerificationEmail"]
    # then it is a typed error on the field, and nothing was mailed
    assert (answer["__typename"], answer["code"], answer["field"]) == (
        "InputError",
        "VALIDATION",
        "email",
    )
    assert await mails() == []
