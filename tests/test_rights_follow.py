"""What a customer needs to follow their rights requests from a page (issue 18, the rights
page of the privacy centre): a refusal names the field it is about and the attempts a code
has left; a fulfilled access request says when its download link was mailed, until when it
works and whether it was used (never the link itself); every rights mail to an account links
to the rights page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from api.clock import FakeClock
from api.mail.links import Page, page_url
from api.services import Services
from api.settings import Settings
from models import AuditEvent, OutboxMessage, RightsRequest
from tests.conftest import GQL, login, mails
from tests.test_input_rules import post, refused
from tests.test_rights_fulfil import FROM_OUR_PAGE, approve_and_fulfil
from tests.test_rights_requests import FULFIL, REVIEW, customer, last_code, officer, received

SUBMIT = """
mutation ($kind: RightsRequestKind!, $details: String!, $changes: RectificationInput) {
  submitRightsRequest(kind: $kind, details: $details, changes: $changes) {
    __typename
    ... on RightsRequestReceipt { id status }
    ... on RightsError { code message field attemptsLeft } } }
"""
VERIFY = """
mutation ($id: ID!, $code: String!) {
  verifyRightsRequest(id: $id, code: $code) {
    __typename
    ... on RightsRequestReceipt { status }
    ... on RightsError { code field attemptsLeft } } }
"""
MINE = """
{ me { rightsRequests { id kind status export { mailedAt expiresAt downloadedAt available } } } }
"""
EXTEND = """
mutation ($id: ID!) { extendRightsRequest(id: $id, reason: "Many records", months: 1) {
  __typename } }
"""
_LINK = re.compile(r"/exports/(\S+)")
JANE = "jane.doe@example.com"


async def _submit(gql: GQL, token: str, kind: str, **extra: Any) -> dict[str, Any]:
    body = await gql(SUBMIT, {"kind": kind, "details": "", **extra}, token=token)
    result: dict[str, Any] = body["data"]["submitRightsRequest"]
    return result


async def _mine(gql: GQL, token: str) -> list[dict[str, Any]]:
    body = await gql(MINE, token=token)
    found: list[dict[str, Any]] = body["data"]["me"]["rightsRequests"]
    return found


async def test_a_wrong_code_says_how_many_attempts_are_left(gql: GQL) -> None:
    token, _ = await customer(gql)
    await _submit(gql, token, "ACCESS")
    request_id, code = await last_code(JANE)
    wrong = "000000" if code != "000000" else "111111"
    first = await gql(VERIFY, {"id": request_id, "code": wrong}, token=token)
    second = await gql(VERIFY, {"id": request_id, "code": wrong}, token=token)
    assert first["data"]["verifyRightsRequest"] == {
        "__typename": "RightsError",
        "code": "INVALID_CODE",
        "field": None,
        "attemptsLeft": 4,
    }
    assert second["data"]["verifyRightsRequest"]["attemptsLeft"] == 3
    # nothing changed but the count, and each refusal is logged
    stored = await RightsRequest.get(id=request_id)
    assert (stored.status, stored.received_at, stored.code_attempts) == ("unverified", None, 2)
    assert await AuditEvent.filter(operation="verify", decision="deny").count() == 2
    # someone else's request (or an unknown one) tells no count: nothing to learn from it
    other, _ = await customer(gql, "sam@example.com")
    foreign = await gql(VERIFY, {"id": request_id, "code": code}, token=other)
    assert foreign["data"]["verifyRightsRequest"]["attemptsLeft"] is None
    assert (await RightsRequest.get(id=request_id)).code_attempts == 2


async def test_a_refused_rectification_names_its_field(gql: GQL) -> None:
    token, _ = await customer(gql)
    bad_postcode = {
        "address": {"line1": "1 New Road", "city": "Leeds", "postalCode": "?!", "country": "GB"}
    }
    refused = await _submit(gql, token, "RECTIFICATION", changes=bad_postcode)
    assert (refused["code"], refused["field"]) == ("VALIDATION", "changes.address.postalCode")
    bad_phone = await _submit(gql, token, "RECTIFICATION", changes={"phone": "12"})
    assert (bad_phone["code"], bad_phone["field"]) == ("VALIDATION", "changes.phone")
    nothing = await _submit(gql, token, "RECTIFICATION", changes={})
    assert (nothing["code"], nothing["field"]) == ("VALIDATION", "changes")
    too_long = await _submit(gql, token, "ACCESS", details="x" * 4001)
    assert (too_long["code"], too_long["field"]) == ("VALIDATION", "details")
    # nothing was recorded, no code mailed, and every refusal was logged
    assert await RightsRequest.all().count() == 0
    assert await OutboxMessage.filter(kind="rights_code").count() == 0
    assert await AuditEvent.filter(operation="submit", decision="deny").count() == 4


async def test_hostile_changes_are_refused_with_the_field_named(gql: GQL) -> None:
    token, _ = await customer(gql)
    for value in ("+44\x00 20", "+44\x1b[2J", "7" * 10_000, "\ud800"):
        variables = {"kind": "RECTIFICATION", "details": "", "changes": {"phone": value}}
        refused(await post(gql, SUBMIT, variables, token), "changes.phone")
    line1 = {"line1": "a\x07" * 5_000, "city": "Leeds", "country": "GB"}
    variables = {"kind": "RECTIFICATION", "details": "", "changes": {"address": line1}}
    refused(await post(gql, SUBMIT, variables, token), "changes.address.line1")
    assert await RightsRequest.all().count() == 0
    assert await OutboxMessage.filter(kind="rights_code").count() == 0


async def test_a_fulfilled_access_request_tells_its_link_was_mailed_and_until_when(
    gql: GQL, services: Services, clock: FakeClock, settings: Settings
) -> None:
    # given Jane's received access request and a rectification request
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    clock.advance(minutes=1)  # newest first: the rectification, then the access request
    await _submit(gql, token, "RECTIFICATION", changes={"phone": "+44 20 7946 0111"})
    # before it is answered there is no export
    assert [r["export"] for r in await _mine(gql, token)] == [None, None]
    # when it is fulfilled
    mailed = clock.now()
    await approve_and_fulfil(gql, services, request_id)
    # then her page can say the link was mailed, and until when it works
    [rectification, access] = await _mine(gql, token)
    assert rectification["export"] is None
    export = access["export"]
    assert export["available"] is True
    assert export["downloadedAt"] is None
    assert datetime.fromisoformat(export["mailedAt"]) == mailed
    expires = mailed + timedelta(days=settings.export_days)
    assert datetime.fromisoformat(export["expiresAt"]) == expires
    # and nothing of the link itself is readable there
    [mail] = await mails("export_ready", JANE)
    match = _LINK.search(mail.body_text)
    assert match
    assert match.group(1) not in str(await gql(MINE, token=token))
    # once downloaded (once), the page says so
    clock.advance(hours=1)
    link = f"/exports/{match.group(1)}"
    assert (await gql.client.post(link, headers=FROM_OUR_PAGE)).status_code == 200
    [_, access] = await _mine(gql, token)
    assert access["export"]["available"] is False
    assert datetime.fromisoformat(access["export"]["downloadedAt"]) == clock.now()


async def test_an_expired_link_is_no_longer_available(
    gql: GQL, services: Services, clock: FakeClock, settings: Settings
) -> None:
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    await approve_and_fulfil(gql, services, request_id)
    clock.advance(days=settings.export_days, seconds=1)
    token = await login(gql, JANE)
    [access] = await _mine(gql, token)
    assert access["export"]["available"] is False
    assert access["export"]["downloadedAt"] is None


async def test_rights_mails_link_to_the_rights_page(
    gql: GQL, services: Services, settings: Settings
) -> None:
    page = page_url(settings, Page.RIGHTS)
    token, _ = await customer(gql)
    request_id = await received(gql, token)
    officer_token = await officer(gql, services)
    await gql(EXTEND, {"id": request_id}, officer_token)
    rectified = await received(
        gql, token, kind="RECTIFICATION", changes={"phone": "+44 20 7946 0111"}
    )
    for one in (request_id, rectified):
        await gql(REVIEW, {"id": one, "decision": "APPROVE", "reason": ""}, officer_token)
        await gql(FULFIL, {"id": one}, officer_token)
    kinds = ("rights_code", "rights_received", "rights_extended", "rights_decided")
    for kind in (*kinds, "rights_completed", "export_ready"):
        sent = await mails(kind, JANE)
        assert sent, kind
        assert all(f"{page}\n" in m.body_text for m in sent), kind
