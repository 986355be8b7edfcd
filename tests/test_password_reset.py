"""A forgotten password (issue 18): `requestPasswordReset` mails a single-use, short-lived
link to an account's address and answers every address alike; `resetPassword` sets the new
password once, ends every session, forgives the account's failed sign-ins, mails a notice
and logs the event (api/recovery/service.py)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from strawberry.permission import PermissionExtension

from api.clock import FakeClock
from api.mail.links import Page, page_url
from api.rights.erasure import NO_PASSWORD
from api.schema import build_schema
from api.security.authn import account_key
from api.security.mail_limits import MailRateLimit
from api.services import Services
from api.settings import Settings
from models import AuditEvent, Customer, LoginFailure, PasswordResetToken, Session
from tests.conftest import GQL, LOGIN, ME, PASSWORD, login, mails, register, stored_customer
from tests.test_input_rules import post, refused, row_counts
from tests.test_no_oracle import statements

EMAIL = "jane.doe@example.com"
NEW_PASSWORD = "a brand new passphrase"
REQUEST = """
mutation($e: String!) { requestPasswordReset(email: $e) {
  __typename
  ... on PasswordResetRequested { linkValidMinutes }
  ... on InputError { code field message } } }
"""
RESET = """
mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) {
  __typename
  ... on PasswordReset { sessionsRevoked }
  ... on TokenError { code message }
  ... on InputError { code field message } } }
"""
ACCEPTED = {
    "data": {
        "requestPasswordReset": {
            "__typename": "PasswordResetRequested",
            "linkValidMinutes": 30,
        }
    }
}
_TOKEN = re.compile(r"resetPassword operation: (\S+)")


async def reset_token(recipient: str = EMAIL) -> str:
    """The token of the latest reset mail to `recipient`."""
    messages = await mails("password_reset", recipient)
    assert messages, f"no reset mail to {recipient}"
    match = _TOKEN.search(messages[-1].body_text)
    assert match
    return match.group(1)


async def ask(gql: GQL, email: str = EMAIL) -> dict[str, Any]:
    return await gql(REQUEST, {"e": email})


async def reset(gql: GQL, token: str, password: str = NEW_PASSWORD) -> dict[str, Any]:
    result: dict[str, Any] = (await gql(RESET, {"t": token, "p": password}))["data"][
        "resetPassword"
    ]
    return result


async def customer_with_sessions(gql: GQL, sessions: int = 2) -> list[str]:
    """Jane, registered and signed in `sessions` times; the client keeps no cookie."""
    await register(gql)
    tokens = [await login(gql) for _ in range(sessions)]
    gql.client.cookies.clear()
    return tokens


async def signs_in(gql: GQL, password: str) -> bool:
    body = await gql(LOGIN, {"email": EMAIL, "password": password})
    gql.client.cookies.clear()
    return bool(body["data"]["login"]["__typename"] == "LoginSuccess")


async def test_a_forgotten_password_is_reset_from_the_mailed_link(
    gql: GQL, settings: Settings
) -> None:
    # given Jane, signed in on two devices
    sessions = await customer_with_sessions(gql)
    # when she asks for a reset link
    assert await ask(gql, "Jane.Doe@Example.com") == ACCEPTED
    # then one mail holds a link to the reset page with a token, stored only as its hash
    [mail] = await mails("password_reset", EMAIL)
    token = await reset_token()
    assert page_url(settings, Page.RESET_PASSWORD, token=token) in mail.body_text
    assert mail.customer_id == (await Customer.get()).id
    assert not await PasswordResetToken.filter(token_hash=token).exists()
    # when she sets a new password with it
    result = await reset(gql, token)
    # then both sessions are over, the new password signs in and the old one does not
    assert result == {
        "__typename": "PasswordReset",
        "sessionsRevoked": 2,
    }
    for old in sessions:
        body = await gql(ME, token=old)
        assert body["data"]["me"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await signs_in(gql, NEW_PASSWORD)
    assert not await signs_in(gql, PASSWORD)
    # and she is told by mail, and the log has the event without token or password
    [notice] = await mails("password_changed", EMAIL)
    assert notice.customer_id == mail.customer_id
    [event] = await AuditEvent.filter(operation="resetPassword").values()
    assert (event["event"], event["decision"], event["actor_kind"]) == ("auth", "allow", "customer")
    assert event["subject_id"] == str(mail.customer_id)
    assert token not in str(event)
    assert NEW_PASSWORD not in str(event)


async def test_the_viewer_cache_forgets_the_revoked_sessions_at_once(
    gql: GQL, services: Services
) -> None:
    # given a process that keeps resolved viewers a minute, and Jane's session in it
    services.sessions._cache_seconds = 60
    [session] = await customer_with_sessions(gql, 1)
    assert (await gql(ME, token=session))["data"]["me"] is not None
    # when she resets her password from another device
    await ask(gql)
    assert (await reset(gql, await reset_token()))["__typename"] == "PasswordReset"
    # then the cached session is refused on its next request
    assert (await gql(ME, token=session))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_reset_link_works_once(gql: GQL) -> None:
    # given a reset link, used once
    await customer_with_sessions(gql, 0)
    await ask(gql)
    token = await reset_token()
    assert (await reset(gql, token))["__typename"] == "PasswordReset"
    # when it is used again
    again = await reset(gql, token, "yet another passphrase")
    # then it is refused and the first new password stays
    assert again == {
        "__typename": "TokenError",
        "code": "INVALID_TOKEN",
        "message": "This link is not valid (it was used, or the password changed since).",
    }
    assert await signs_in(gql, NEW_PASSWORD)
    assert len(await mails("password_changed")) == 1


async def test_a_reset_link_expires(gql: GQL, clock: FakeClock, settings: Settings) -> None:
    # given a link mailed a moment before its time runs out, and one mailed at the same time
    await customer_with_sessions(gql, 0)
    await ask(gql)
    first = await reset_token()
    await ask(gql)
    second = await reset_token()
    clock.advance(minutes=settings.password_reset_minutes - 1)
    # when one is used within its time and the other after
    assert (await reset(gql, first))["__typename"] == "PasswordReset"
    clock.advance(minutes=1)
    late = await reset(gql, second, "yet another passphrase")
    # then the late one has expired and nothing changed
    assert (late["__typename"], late["code"]) == ("TokenError", "TOKEN_EXPIRED")
    assert await signs_in(gql, NEW_PASSWORD)


async def test_a_new_password_ends_every_earlier_link(gql: GQL) -> None:
    # given two links mailed to Jane
    await customer_with_sessions(gql, 0)
    await ask(gql)
    earlier = await reset_token()
    await ask(gql)
    later = await reset_token()
    # when she uses the later one
    assert (await reset(gql, later))["__typename"] == "PasswordReset"
    # then the earlier one no longer works, though unused and on time
    refused_reset = await reset(gql, earlier, "yet another passphrase")
    assert (refused_reset["__typename"], refused_reset["code"]) == ("TokenError", "INVALID_TOKEN")
    assert await signs_in(gql, NEW_PASSWORD)


async def test_a_weak_password_is_refused_and_the_link_still_works(gql: GQL) -> None:
    # given a reset link
    await customer_with_sessions(gql, 1)
    await ask(gql)
    token = await reset_token()
    # when a password the policy refuses is chosen, then one too long
    weak = await reset(gql, token, "password1")
    long = await reset(gql, token, "x" * 257)
    # then each is a typed input error naming the field, and nothing changed
    assert (weak["__typename"], weak["field"], weak["code"]) == (
        "InputError",
        "newPassword",
        "WEAK_PASSWORD",
    )
    assert (long["__typename"], long["field"], long["code"]) == (
        "InputError",
        "newPassword",
        "VALIDATION",
    )
    assert await Session.filter(revoked_at=None).count() == 1
    assert await signs_in(gql, PASSWORD)
    # and the link still works with a good password
    assert (await reset(gql, token))["__typename"] == "PasswordReset"


async def test_known_unknown_and_erased_addresses_get_the_same_answer_and_work(
    gql: GQL, caplog: pytest.LogCaptureFixture
) -> None:
    # given Jane, an erased account whose address a legal hold kept, and first use done
    await customer_with_sessions(gql, 0)
    erased = await stored_customer(7, at=(await Customer.get()).created_at)
    await Customer.filter(id=erased.id).update(password_hash=NO_PASSWORD)
    await ask(gql, "warm-up@example.com")

    async def attempt(email: str) -> tuple[dict[str, Any], list[str]]:
        with statements(caplog) as seen:
            body = await ask(gql, email)
        return body, seen

    # when a reset is asked for Jane, for an unknown address and for the erased account
    known, known_sql = await attempt(EMAIL)
    unknown, unknown_sql = await attempt("nobody@example.com")
    gone, gone_sql = await attempt(erased.email)
    # then the answers and the statements are the same, writes included
    assert known == unknown == gone == ACCEPTED
    assert known_sql == unknown_sql == gone_sql
    assert any(s.startswith('INSERT INTO "password_reset_token"') for s in unknown_sql)
    assert any(s.startswith('INSERT INTO "outbox_message"') for s in unknown_sql)
    # and only Jane got a link; only her token is stored
    assert [m.recipient for m in await mails("password_reset")] == [EMAIL]
    assert await PasswordResetToken.all().count() == 1


async def test_the_limit_drops_mails_not_answers(gql: GQL, settings: Settings) -> None:
    # given Jane, who may be mailed so many links of a kind per window
    await customer_with_sessions(gql, 0)
    limit = settings.mail_max_per_recipient
    # when a reset is asked for her address once more than that
    answers = [await ask(gql) for _ in range(limit + 1)]
    # then every answer is the same, and the last one mailed nothing and stored no token
    assert answers == [ACCEPTED] * (limit + 1)
    assert len(await mails("password_reset", EMAIL)) == limit
    assert await PasswordResetToken.all().count() == limit


def test_every_recovery_operation_declares_the_ip_limit() -> None:
    # given the schema's mutations
    fields = build_schema(Settings())._schema.mutation_type.fields  # type: ignore[union-attr]

    def declares(name: str) -> bool:
        definition = fields[name].extensions["strawberry-definition"]
        return any(
            isinstance(extension, PermissionExtension)
            and any(isinstance(p, MailRateLimit) for p in extension.permissions)
            for extension in definition.extensions
        )

    # then each recovery operation, all of which send mail, is limited per client IP
    names = ["requestPasswordReset", "resetPassword", "resendVerificationEmail"]
    assert [name for name in names if not declares(name)] == []


async def test_the_ip_limit_answers_every_address_alike(gql: GQL, settings: Settings) -> None:
    # given Jane's account (its registration was one mail-sending request) and a client
    # that has two such requests left
    await customer_with_sessions(gql, 0)
    for n in range(settings.mail_max_requests_ip - 3):
        await ask(gql, f"someone{n}@example.com")
    assert await ask(gql, EMAIL) == await ask(gql, "nobody@example.com") == ACCEPTED
    # when it asks again for Jane's address and for an unknown one
    known = await gql.raw(REQUEST, {"e": EMAIL})
    unknown = await gql.raw(REQUEST, {"e": "nobody@example.com"})
    # then both are refused alike, and Jane got only the mail asked for in time
    assert known.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert known.headers["retry-after"] == unknown.headers["retry-after"]
    assert len(await mails("password_reset", EMAIL)) == 1


HOSTILE = [
    pytest.param(REQUEST, {"e": "a\x00@example.com"}, "email", id="nul-email"),
    pytest.param(REQUEST, {"e": "a\ud800@example.com"}, "email", id="surrogate-email"),
    pytest.param(REQUEST, {"e": "a\x0b@example.com"}, "email", id="control-email"),
    pytest.param(REQUEST, {"e": "a" * 1_001}, "email", id="huge-email"),
    pytest.param(RESET, {"t": "t\x00", "p": NEW_PASSWORD}, "token", id="nul-token"),
    pytest.param(RESET, {"t": "t\ud800", "p": NEW_PASSWORD}, "token", id="surrogate-token"),
    pytest.param(RESET, {"t": "t\x1b", "p": NEW_PASSWORD}, "token", id="control-token"),
    pytest.param(RESET, {"t": "t" * 10_001, "p": NEW_PASSWORD}, "token", id="huge-token"),
    pytest.param(RESET, {"t": "t", "p": "p\x00" + NEW_PASSWORD}, "newPassword", id="nul-password"),
    pytest.param(
        RESET, {"t": "t", "p": "\udfff" + NEW_PASSWORD}, "newPassword", id="surrogate-password"
    ),
    pytest.param(RESET, {"t": "t", "p": "p" * 1_001}, "newPassword", id="huge-password"),
]


@pytest.mark.parametrize(("document", "variables", "argument"), HOSTILE)
async def test_hostile_strings_are_refused_before_anything_runs(
    gql: GQL, document: str, variables: dict[str, str], argument: str
) -> None:
    # given an account and the state of every table
    await customer_with_sessions(gql, 0)
    before = await row_counts()
    # when a request carries NUL, a lone surrogate, a control character or too much
    body = await post(gql, document, variables)
    # then it is a typed VALIDATION error naming the argument, and nothing was written
    refused(body, argument)
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("token", "email"),
    [
        pytest.param("x" * 5_000, "not an address", id="garbage"),
        pytest.param("é\U0001f600\u200f", "é@", id="unicode"),
        pytest.param("", "", id="empty"),
    ],
)
async def test_garbage_that_passes_the_edge_gets_typed_answers(
    gql: GQL, token: str, email: str
) -> None:
    # when a token or an address is garbage the edge lets through (a secret, a long line)
    by_token = await reset(gql, token)
    by_email = (await ask(gql, email))["data"]["requestPasswordReset"]
    # then the token is invalid and the address a field error, nothing internal
    assert (by_token["__typename"], by_token["code"]) == ("TokenError", "INVALID_TOKEN")
    assert (by_email["__typename"], by_email["field"]) == ("InputError", "email")
    assert await mails() == []


async def test_ten_identical_concurrent_resets_have_one_effect(gql: GQL) -> None:
    # given Jane, signed in, and a reset link
    await customer_with_sessions(gql, 1)
    await ask(gql)
    token = await reset_token()
    # when ten identical resets arrive at once
    results = await asyncio.gather(*(reset(gql, token) for _ in range(10)))
    # then one changed the password and the nine others were told the link is used
    kinds = sorted((r["__typename"], r.get("code")) for r in results)
    assert kinds == [("PasswordReset", None)] + [("TokenError", "INVALID_TOKEN")] * 9
    # and there is one notice, one logged event, and the new password signs in
    assert len(await mails("password_changed")) == 1
    assert await AuditEvent.filter(operation="resetPassword").count() == 1
    assert await PasswordResetToken.filter(used_at__isnull=False).count() == 1
    assert await signs_in(gql, NEW_PASSWORD)


async def test_a_reset_forgives_the_accounts_failed_sign_ins(
    gql: GQL, services: Services, settings: Settings
) -> None:
    # given Jane's account locked by failed sign-ins
    await customer_with_sessions(gql, 0)
    for _ in range(settings.login_max_failures_account):
        await services.throttle.record_failure(account=account_key(EMAIL), ip=None)
    locked = await gql(LOGIN, {"email": EMAIL, "password": PASSWORD})
    assert locked["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # when she resets her password from the mailed link
    await ask(gql)
    assert (await reset(gql, await reset_token()))["__typename"] == "PasswordReset"
    # then the account's failures are gone and the new password signs in at once
    assert await LoginFailure.filter(scope="account").count() == 0
    assert await signs_in(gql, NEW_PASSWORD)
