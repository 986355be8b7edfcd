"""docs/RECIPIENTS.md shows a processor how to check a notice and sign its answer: that
code, taken from the page as it is, accepts what Custos signs, refuses a changed body, a
wrong key, an old timestamp and a notice already handled, and its answer is accepted."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from api.clock import FakeClock
from api.recipients import signing
from models import Processor, RecipientNotice

PAGE = Path(__file__).parents[1] / "docs" / "RECIPIENTS.md"
_PYTHON = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documented() -> dict[str, Any]:
    [block] = _PYTHON.findall(PAGE.read_text())
    namespace: dict[str, Any] = {}
    exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 (our own docs)
    return namespace


def test_the_documented_check_accepts_what_custos_signs_and_nothing_else() -> None:
    doc = documented()
    key, other = signing.new_key(), signing.new_key()
    body = json.dumps({"notice": "n-1", "event": "erasure"}).encode()
    now = int(time.time())
    headers = signing.headers(key, now, body)
    assert doc["verify_notice"](key, headers, body, set())["notice"] == "n-1"
    refusals = [
        ((key, headers, body + b" ", set()), "bad signature"),
        ((other, headers, body, set()), "bad signature"),
        ((key, signing.headers(key, now - 3600, body), body, set()), "stale"),
        ((key, {}, body, set()), "stale or missing"),
        ((key, headers, body, {"n-1"}), "already handled"),
    ]
    for args, why in refusals:
        with pytest.raises(ValueError, match=why):
            doc["verify_notice"](*args)


async def test_the_documented_answer_is_accepted(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    doc = documented()
    key = signing.new_key()
    processor = await Processor.create(
        name="Docs Ltd",
        contact="dpo@docs.example",
        country="IE",
        contract_reference="DPA",
        purposes=["marketing.email"],
        categories=["contact.email"],
        active_from=clock.now() - timedelta(days=1),
        notice_secret=key,
        created_by=uuid4(),
        created_at=clock.now(),
        updated_by=uuid4(),
        updated_at=clock.now(),
    )
    notice = await RecipientNotice.create(
        customer_id=uuid4(),
        trigger="erasure",
        processor_id=processor.id,
        recipient=processor.name,
        channel="webhook",
        status="notified",
        created_at=clock.now(),
    )
    headers, body = doc["acknowledgement"](key, str(processor.id), str(notice.id), "no_record")
    response = await client.post("/notices/acknowledge", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert (await RecipientNotice.get(id=notice.id)).outcome == "no_record"
