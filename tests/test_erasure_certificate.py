"""Proof of erasure: once an erasure is completed (its one recipient acknowledged), the
customer downloads, from the link in the answer mailed to them, a certificate signed by the
decision log's key: per category what was erased or kept under which hold, which
recipients acknowledged, and the log rows that record it, each proven in a signed tree.
The standalone verifier accepts it and refuses every alteration."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from api.clock import FakeClock
from api.recipients import links
from api.services import Services
from authz import log_tree
from models import AuditEvent, RecipientNotice
from tests.cli_helpers import REPO
from tests.conftest import GQL, mails, signed_in_employee
from tests.test_log_proofs_api import vkeys
from tests.test_recipient_notices import contract, disclosed, registered
from tests.test_rights_fulfil import PLACE_HOLD, approve_and_fulfil
from tests.test_rights_requests import customer, received
from verifier import certificate
from verifier.note import Signer

_LINK = re.compile(r"https://shop\.example\.test(/certificates/\S+)")


def verify_file(path: Path, vkey: str) -> subprocess.CompletedProcess[str]:
    """`python -m verifier check-certificate`, as a customer or auditor runs it."""
    command = ["-m", "verifier", "check-certificate", "--certificate", str(path)]
    return subprocess.run(
        [sys.executable, *command, "--log-key", vkey],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def completed_erasure(gql: GQL, services: Services, clock: FakeClock) -> tuple[str, str]:
    """(request id, certificate path) of Jane's erasure, a hold on her address, her email
    shared with one processor which has not answered yet."""
    token, jane = await customer(gql)
    mailer = await registered(clock, "Mailer Ltd")
    await disclosed(jane.id, clock, contract(mailer, "contact.email"))
    request_id = await received(gql, token, kind="ERASURE")
    legal, _ = await signed_in_employee(gql, services, "legal")
    gql.client.cookies.clear()
    hold = {"customerId": str(jane.id), "categories": ["contact.address"]}
    await gql(PLACE_HOLD, hold, legal)
    node = await approve_and_fulfil(gql, services, request_id)
    assert node["status"] == "NOTIFYING"
    [answer] = await mails("rights_erased", "jane.doe@example.com")
    link = _LINK.search(answer.body_text)
    assert link, answer.body_text
    return request_id, link.group(1)


async def test_a_completed_erasure_has_a_certificate_the_verifier_accepts(
    gql: GQL, services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    request_id, path = await completed_erasure(gql, services, clock)
    # before the recipient answers: not yet
    early = await gql.client.get(path)
    assert (early.status_code, early.json()) == (409, {"error": "NOT_COMPLETE", "waitingFor": 1})
    notice = await RecipientNotice.get(request_id=request_id)
    confirmed = await gql.client.post(f"/notices/{links.ack_token(services.secret, notice.id)}")
    assert confirmed.status_code == 200
    response = await gql.client.get(path)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    checked = certificate.check(response.content, await vkeys(gql))
    # it says what was done per category, with the hold's reference for what was kept
    actions = {name: (action, detail) for name, action, detail in checked.categories}
    assert actions["contact.email"][0] == "erased"
    assert actions["contact.address"][0] == "kept"
    assert "Case 2026-117" in actions["contact.address"][1]["references"]
    assert checked.request == request_id
    assert [(n, s, o) for n, s, o, _ in checked.recipients] == [
        ("Mailer Ltd", "acknowledged", "done")
    ]
    # and cites the log rows of each erase decision and of the answer, proven in its tree
    erase_rows = await AuditEvent.filter(action="erase").values_list("id", flat=True)
    answer_rows = await AuditEvent.filter(event="recipients").values_list("id", flat=True)
    wanted = await log_tree.leaves_of([int(i) for i in [*erase_rows, *answer_rows]])
    assert erase_rows
    assert answer_rows
    assert {i for i, _ in checked.evidence} >= {leaf.index for leaf in wanted.values()}
    # the standalone verifier's command says so too
    saved = tmp_path / "certificate.json"
    saved.write_bytes(response.content)
    vkey = (await gql.client.get("/.well-known/custos/log-keys")).json()["keys"][-1]["vkey"]
    run = await asyncio.to_thread(verify_file, saved, vkey)
    assert run.returncode == 0, run.stderr
    assert "certificate ok" in run.stdout
    assert "recipient Mailer Ltd: acknowledged" in run.stdout
    # every alteration is refused
    document = json.loads(response.content)
    altered = [
        {**document, "certificate": document["certificate"].replace(" kept ", " erased ", 1)},
        {**document, "proofs": {i: ["00" * 32, *p[1:]] for i, p in document["proofs"].items()}},
        {**document, "checkpoint": document["checkpoint"].replace("\n", "\n\n", 1)},
    ]
    for bad in altered:
        with pytest.raises(certificate.CertificateError):
            certificate.check(json.dumps(bad), await vkeys(gql))
    stranger = Signer.generate(checked.origin).verifier
    with pytest.raises(certificate.CertificateError):
        certificate.check(response.content, [stranger])
    saved.write_text(json.dumps(altered[0]))
    refused = await asyncio.to_thread(verify_file, saved, vkey)
    assert refused.returncode == 2
    assert "NOT VALID" in refused.stderr


async def test_a_forged_or_foreign_certificate_link_is_not_found(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    _, path = await completed_erasure(gql, services, clock)
    request_id = path.rsplit("/", 1)[1].split(".")[0]
    for bad in (
        f"/certificates/{request_id}.{'0' * 40}",
        f"/certificates/{request_id}",
        "/certificates/" + "x" * 3000,
        "/certificates/%00",
    ):
        response = await gql.client.get(bad)
        assert response.status_code == 404, bad
    assert await AuditEvent.filter(event="rights", operation="certificate").count() == 0
