"""What a recipient may answer, and everything else refused: a wrong signature, a stale or
future timestamp, a replay, an unknown notice, another recipient's notice, a malformed or
hostile body. Each refusal is a 4xx with its code, changes nothing and is logged; ten
identical acknowledgements at once settle the notice once."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from api.clock import FakeClock
from api.recipients import links
from api.recipients.signing import new_key
from api.security.refusal_limit import REFUSALS_PER_IP
from api.security.secret_keys import SigningKey
from api.services import Services
from models import AuditEvent, Processor, RecipientNotice
from tests.notice_receivers import sign

ACK = "/notices/acknowledge"


async def processor(clock: FakeClock, name: str) -> Processor:
    return await Processor.create(
        name=name,
        contact=f"dpo@{name.lower()}.example",
        country="IE",
        contract_reference="DPA",
        purposes=["marketing.email"],
        categories=["contact.email"],
        active_from=clock.now() - timedelta(days=1),
        notice_url=f"https://{name.lower()}.example/notices",
        notice_secret=new_key(),
        created_by=uuid4(),
        created_at=clock.now(),
        updated_by=uuid4(),
        updated_at=clock.now(),
    )


async def notice_to(p: Processor, clock: FakeClock, status: str = "notified") -> RecipientNotice:
    return await RecipientNotice.create(
        id=uuid4(),
        customer_id=uuid4(),
        request_id=None,
        trigger="consent_withdrawn",
        purpose="marketing.email",
        processor_id=p.id,
        recipient=p.name,
        categories=["contact.email"],
        channel="webhook",
        status=status,
        created_at=clock.now(),
        sends=1,
    )


def signed(
    p: Processor, body: bytes, *, key: str | None = None, at: int | None = None
) -> dict[str, str]:
    now = int(time.time()) if at is None else at
    return {
        "Content-Type": "application/json",
        "Custos-Processor": str(p.id),
        "Custos-Timestamp": str(now),
        "Custos-Signature": sign(key or p.notice_secret, now, body),
    }


def answer(notice_id: object, outcome: str = "done", **extra: Any) -> bytes:
    return json.dumps({"notice": str(notice_id), "outcome": outcome, **extra}).encode()


async def denied() -> list[str]:
    rows = await AuditEvent.filter(event="recipients", decision="deny").order_by("id")
    return [r.reason for r in rows]


@pytest.fixture
async def two(clock: FakeClock) -> tuple[Processor, Processor, RecipientNotice]:
    a, b = await processor(clock, "Alpha"), await processor(clock, "Beta")
    return a, b, await notice_to(a, clock)


async def test_a_signed_acknowledgement_settles_the_notice_and_is_logged(
    client: httpx.AsyncClient, two: tuple[Processor, Processor, RecipientNotice]
) -> None:
    a, _, notice = two
    body = answer(notice.id, "no_record", note="We never stored this customer.")
    response = await client.post(ACK, content=body, headers=signed(a, body))
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"
    stored = await RecipientNotice.get(id=notice.id)
    assert (stored.status, stored.outcome) == ("acknowledged", "no_record")
    assert stored.reason == "We never stored this customer."
    [event] = await AuditEvent.filter(event="recipients")
    assert (event.decision, event.actor_kind, event.actor_id) == ("allow", "processor", str(a.id))
    assert "We never" not in event.reason  # the note is not logged


def _refusals(
    a: Processor, b: Processor, notice: RecipientNotice
) -> list[tuple[str, bytes, dict[str, str], int, str]]:
    good = answer(notice.id)
    other_key = new_key()
    stale = int(time.time()) - 3600
    future = int(time.time()) + 3600
    unknown = answer(uuid4())
    not_json = b"{notice: done"
    nul = answer(notice.id, note="a\x00b")
    surrogate = (
        b'{"notice": "' + str(notice.id).encode() + b'", "outcome": "done", "note": "\\ud800"}'
    )
    huge = answer(notice.id, note="x" * 5000)
    return [
        ("wrong key", good, signed(a, good, key=other_key), 401, "BAD_SIGNATURE"),
        (
            "body changed after signing",
            good,
            signed(a, answer(notice.id, "no_record")),
            401,
            "BAD_SIGNATURE",
        ),
        ("stale", good, signed(a, good, at=stale), 401, "STALE"),
        ("from the future", good, signed(a, good, at=future), 401, "STALE"),
        ("no signature", good, {"Custos-Processor": str(a.id)}, 401, "BAD_SIGNATURE"),
        (
            "unknown processor",
            good,
            {**signed(a, good), "Custos-Processor": str(uuid4())},
            401,
            "BAD_SIGNATURE",
        ),
        (
            "garbage processor",
            good,
            {**signed(a, good), "Custos-Processor": "x\x01"},
            401,
            "BAD_SIGNATURE",
        ),
        ("another recipient's notice", good, signed(b, good), 403, "NOT_NOTIFIED"),
        ("unknown notice", unknown, signed(a, unknown), 404, "UNKNOWN_NOTICE"),
        ("not JSON", not_json, signed(a, not_json), 400, "MALFORMED"),
        (
            "unknown outcome",
            answer(notice.id, "maybe"),
            signed(a, answer(notice.id, "maybe")),
            400,
            "BAD_OUTCOME",
        ),
        ("NUL in the note", nul, signed(a, nul), 400, "VALIDATION"),
        ("lone surrogate", surrogate, signed(a, surrogate), 400, "VALIDATION"),
        ("huge", huge, signed(a, huge), 413, "TOO_LARGE"),
    ]


async def test_every_bad_acknowledgement_is_refused_changes_nothing_and_is_logged(
    client: httpx.AsyncClient, two: tuple[Processor, Processor, RecipientNotice]
) -> None:
    a, b, notice = two
    for case, body, headers, status, code in _refusals(a, b, notice):
        response = await client.post(ACK, content=body, headers=headers)
        assert (response.status_code, response.json().get("error")) == (status, code), case
        stored = await RecipientNotice.get(id=notice.id)
        assert (stored.status, stored.outcome, stored.acknowledged_at) == ("notified", "", None)
        assert (await denied())[-1] == code, case
    assert len(await denied()) == len(_refusals(a, b, notice))


async def test_a_replayed_acknowledgement_is_refused(
    client: httpx.AsyncClient, two: tuple[Processor, Processor, RecipientNotice]
) -> None:
    a, _, notice = two
    body = answer(notice.id)
    headers = signed(a, body)
    assert (await client.post(ACK, content=body, headers=headers)).status_code == 200
    settled = await RecipientNotice.get(id=notice.id)
    replay = await client.post(ACK, content=body, headers=headers)
    assert (replay.status_code, replay.json()["error"]) == (409, "ALREADY_SETTLED")
    assert (await RecipientNotice.get(id=notice.id)).acknowledged_at == settled.acknowledged_at
    assert await denied() == ["ALREADY_SETTLED"]


async def test_ten_identical_acknowledgements_at_once_settle_it_once(
    client: httpx.AsyncClient, two: tuple[Processor, Processor, RecipientNotice]
) -> None:
    a, _, notice = two
    body = answer(notice.id)
    headers = signed(a, body)
    answers = await asyncio.gather(
        *(client.post(ACK, content=body, headers=headers) for _ in range(10))
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 9
    assert len(await AuditEvent.filter(event="recipients", decision="allow")) == 1


async def test_a_link_for_a_settled_or_forged_notice_is_refused(
    client: httpx.AsyncClient, services: Services, two: tuple[Processor, Processor, RecipientNotice]
) -> None:
    _, _, notice = two
    token = links.ack_token(services.secret, notice.id)
    forged = f"{notice.id}.{'0' * 40}"
    other = links.ack_token(services.secret, uuid4())
    for bad in (
        forged,
        other,
        "x" * 5000,
        f"{notice.id}",
        "%00",
        "\ud800".encode("utf-8", "surrogatepass").hex(),
    ):
        response = await client.post(f"/notices/{bad}")
        assert response.status_code == 404, bad
        assert (await RecipientNotice.get(id=notice.id)).status == "notified"
    assert (await client.post(f"/notices/{token}")).status_code == 200
    assert (await client.post(f"/notices/{token}")).status_code == 409
    assert (await client.get(f"/notices/{forged}")).status_code == 404
    assert (await RecipientNotice.get(id=notice.id)).outcome == "done"
    assert UUID(str(notice.id))


async def test_a_flood_of_bad_answers_is_cut_off_and_cannot_fill_the_log(
    client: httpx.AsyncClient, services: Services, two: tuple[Processor, Processor, RecipientNotice]
) -> None:
    a, _, notice = two
    good = answer(notice.id)
    forged = signed(a, good, key=new_key())
    # the first REFUSALS_PER_IP bad answers from one address are refused and logged
    for _ in range(REFUSALS_PER_IP):
        response = await client.post(ACK, content=good, headers=forged)
        assert (response.status_code, response.json()["error"]) == (401, "BAD_SIGNATURE")
    # then every refusal, ten at once included, is 429 RATE_LIMITED, and is logged once
    flood = await asyncio.gather(
        *(client.post(ACK, content=good, headers=forged) for _ in range(10))
    )
    flood.append(await client.post(f"/notices/{notice.id}.{'0' * 40}"))  # a forged link too
    assert {r.status_code for r in flood} == {429}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in flood)
    assert [r.json()["error"] for r in flood[:-1]] == ["RATE_LIMITED"] * 10
    assert "Too many attempts" in flood[-1].text
    assert await denied() == ["BAD_SIGNATURE"] * REFUSALS_PER_IP + ["RATE_LIMITED"]
    stored = await RecipientNotice.get(id=notice.id)
    assert (stored.status, stored.outcome) == ("notified", "")
    # and a true answer from the same address is still taken
    settled = await client.post(ACK, content=good, headers=signed(a, good))
    assert (settled.status_code, settled.json()["status"]) == (200, "acknowledged")
    # the limit is per window: the next one starts afresh
    services.clock.advance(seconds=services.settings.mail_window_seconds)  # type: ignore[attr-defined]
    again = await client.post(ACK, content=good, headers=forged)
    assert (again.status_code, again.json()["error"]) == (401, "BAD_SIGNATURE")


def test_a_link_made_under_a_previous_key_still_reads_after_a_rotation() -> None:
    notice_id = uuid4()
    token = links.ack_token(SigningKey("the-key-before-the-rotation-0123456789"), notice_id)
    rotated = SigningKey(
        "the-key-after-the-rotation-9876543210", previous=["the-key-before-the-rotation-0123456789"]
    )
    assert links.notice_of(rotated, token) == notice_id
    assert links.notice_of(SigningKey("the-key-after-the-rotation-9876543210"), token) is None
