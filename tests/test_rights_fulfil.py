"""Fulfilling rights requests end to end, through the API: an access request ends in a
one-time download of the customer's data; an erasure request erases everything not under a
legal hold, answers per category, and the account is gone; every category the officer
touches is decided for purpose legal and logged."""

from __future__ import annotations

import json
import re
from typing import Any

from api.mail.sender import deliver_pending
from api.services import Services
from authz.audit import verify
from models import AuditEvent, Customer, OutboxMessage, RightsRequest
from tests.conftest import GQL, LOGIN, PASSWORD, mails, signed_in_employee
from tests.test_rights_requests import FULFIL, REVIEW, customer, officer, received

PLACE_HOLD = """
mutation ($customerId: ID!, $categories: [String!]!) {
  placeLegalHold(customerId: $customerId, categories: $categories,
                 reason: "Pending litigation", reference: "Case 2026-117") { __typename } }
"""
_LINK = re.compile(r"/exports/(\S+)")
FROM_OUR_PAGE = {"origin": "https://shop.example.test", "sec-fetch-site": "same-origin"}


class Sink:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, message: Any) -> None:
        self.sent.append(message)


async def approve_and_fulfil(gql: GQL, services: Services, request_id: str) -> dict[str, Any]:
    token = await officer(gql, services)
    await gql(REVIEW, {"id": request_id, "decision": "APPROVE", "reason": ""}, token)
    body = await gql(FULFIL, {"id": request_id}, token)
    node: dict[str, Any] = body["data"]["fulfillRightsRequest"]
    return node


async def test_an_access_request_ends_in_a_one_time_download(gql: GQL, services: Services) -> None:
    # given Jane's received access request, and another customer
    token, jane = await customer(gql)
    await customer(gql, "sam@example.com")
    request_id = await received(gql, token)
    # when the officer approves and fulfils it
    node = await approve_and_fulfil(gql, services, request_id)
    # then it is completed, and a link is mailed to Jane
    assert node["status"] == "COMPLETED"
    assert node["outcome"] == {"omitted": []}
    [mail] = await mails("export_ready", "jane.doe@example.com")
    match = _LINK.search(mail.body_text)
    assert match
    # and the link gives her data once, nobody else's: opening it shows the download
    # button, pressing it (a POST from that page) downloads
    link = f"/exports/{match.group(1)}"
    assert (await gql.client.get(link)).status_code == 200
    response = await gql.client.post(link, headers=FROM_OUR_PAGE)
    assert response.status_code == 200
    document = response.json()
    assert document["customer"]["email"] == "jane.doe@example.com"
    assert "sam@example.com" not in response.text
    assert [r["id"] for r in document["rightsRequests"]] == [request_id]
    assert (await gql.client.post(link, headers=FROM_OUR_PAGE)).status_code == 410
    # and every category was decided for the officer, for purpose legal, and logged
    decided = await AuditEvent.filter(action="export", subject_id=str(jane.id))
    assert decided
    assert {e.purpose for e in decided} == {"legal"}
    assert {e.decision for e in decided} == {"allow"}
    assert (await verify()).ok


async def test_an_erasure_keeps_only_what_a_legal_hold_covers(gql: GQL, services: Services) -> None:
    # given Jane's received erasure request, and a legal hold on her email address
    token, jane = await customer(gql)
    request_id = await received(gql, token, kind="ERASURE")
    legal_token, _ = await signed_in_employee(gql, services, "legal")
    gql.client.cookies.clear()
    held = await gql(
        PLACE_HOLD, {"customerId": str(jane.id), "categories": ["contact.email"]}, legal_token
    )
    assert held["data"]["placeLegalHold"]["__typename"] == "LegalHoldPlaced"
    # when the officer fulfils it
    node = await approve_and_fulfil(gql, services, request_id)
    # then each category says what was done; the held one names its hold
    assert node["status"] == "COMPLETED"
    categories = node["outcome"]["categories"]
    assert categories["contact.email"]["action"] == "kept"
    assert "Case 2026-117" in json.dumps(categories["contact.email"])
    assert categories["contact.phone"]["action"] == "erased"
    assert node["details"] in ("", None)
    # and the account is gone: phone and address erased, the email kept, no sign-in
    erased = await Customer.get(id=jane.id)
    assert (erased.email, erased.phone, erased.address_line1) == ("jane.doe@example.com", "", "")
    gql.client.cookies.clear()
    body = await gql(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
    assert body["data"]["login"]["__typename"] == "InvalidCredentials"
    assert (await RightsRequest.get(id=request_id)).details == ""
    # and the answer is mailed, then the address is forgotten once delivered
    [answer] = await OutboxMessage.filter(kind="rights_erased")
    assert (answer.recipient, answer.customer_id) == ("jane.doe@example.com", None)
    assert "contact.email: kept" in answer.body_text
    sink = Sink()
    await deliver_pending(backend=sink, settings=services.settings, clock=services.clock)
    assert any(m["Subject"] == "Your request is complete" for m in sink.sent)
    delivered = await OutboxMessage.get(id=answer.id)
    assert (delivered.status, delivered.recipient, delivered.body_text) == ("sent", "", "")
    assert (await verify()).ok


async def test_erasure_without_a_hold_leaves_no_contact_data(gql: GQL, services: Services) -> None:
    token, jane = await customer(gql)
    request_id = await received(gql, token, kind="ERASURE")
    node = await approve_and_fulfil(gql, services, request_id)
    assert node["status"] == "COMPLETED"
    assert {c["action"] for c in node["outcome"]["categories"].values()} <= {
        "erased",
        "anonymised",
    }
    erased = await Customer.get(id=jane.id)
    assert "jane" not in erased.email
    assert erased.phone == ""
