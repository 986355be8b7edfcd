"""The verifiable log over GraphQL: auditors list checkpoints, ask for inclusion and
consistency proofs and sign a checkpoint on demand; a customer's access log carries the
evidence that each entry is in the signed log, without naming the employee or the other
customers of the same row. Everyone else is refused, and the refusal is logged."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from api.clock import FakeClock
from api.services import Services
from authz import log_tree
from authz.audit import AuditRecord, append
from authz.registry import Role
from models import AuditCheckpoint, AuditEvent
from tests.conftest import GQL, signed_in_employee
from tests.test_audit_queries import customer, error
from tests.test_hostile_input import send
from tests.test_no_oracle import statements
from verifier import leaf as leaf_format
from verifier import merkle
from verifier.note import open_checkpoint, parse_vkey

SIGN = "mutation { signAuditCheckpoint { treeSize rootHash keyId note signedAt } }"
CHECKPOINTS = "query($first: Int! = 20) { auditCheckpoints(first: $first) { treeSize note } }"
INCLUSION = """
query($id: ID!, $size: LogIndex) {
  auditInclusionProof(eventId: $id, treeSize: $size) {
    leafIndex treeSize hashes leaf leafHash checkpoint
  }
}
"""
CONSISTENCY = """
query($from: LogIndex!, $to: LogIndex!) {
  auditConsistencyProof(from: $from, to: $to) { from to hashes }
}
"""
EVIDENCE = """
{ me { id accessLog(first: 20) { edges { node { reference categories
  evidence { leaf subjectKey proof { leafIndex treeSize hashes leaf leafHash checkpoint } }
} } } } }
"""


def rows(clock: FakeClock, subjects: list[str]) -> list[AuditRecord]:
    at = clock.now() - timedelta(days=1)
    return [
        AuditRecord(
            at=at + timedelta(minutes=n),
            actor_kind="employee",
            actor_id="e-care",
            roles="customer_care",
            event="access",
            decision="allow",
            category="contact.email",
            action="read",
            purpose="support",
            request_id=f"req-{n}",
            subject_id=subject,
        )
        for n, subject in enumerate(subjects)
    ]


def b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


async def vkeys(gql: GQL) -> list[Any]:
    keys = (await gql.client.get("/.well-known/custos/log-keys")).json()["keys"]
    return [parse_vkey(k["vkey"]) for k in keys]


async def test_an_auditor_signs_lists_and_proves(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await append(rows(clock, [f"c-{n}" for n in range(6)]))
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    first = (await gql(SIGN, token=token))["data"]["signAuditCheckpoint"]
    await append(rows(clock, ["c-7", "c-8"]))
    second = (await gql(SIGN, token=token))["data"]["signAuditCheckpoint"]
    assert first["treeSize"] < second["treeSize"]
    listed = (await gql(CHECKPOINTS, token=token))["data"]["auditCheckpoints"]
    assert [c["treeSize"] for c in listed] == [second["treeSize"], first["treeSize"]]
    # the note opens with the published key and holds the tree's root
    checkpoint, _ = open_checkpoint(second["note"], await vkeys(gql))
    assert base64.b64encode(checkpoint.root).decode() == second["rootHash"]
    # inclusion of one row, in the latest checkpoint by default
    target = await AuditEvent.get(subject_id="c-3")
    got = (await gql(INCLUSION, {"id": str(target.id)}, token=token))["data"]
    proof = got["auditInclusionProof"]
    assert proof["treeSize"] == checkpoint.size
    assert proof["checkpoint"] == second["note"]
    leaf_hash = merkle.leaf_hash(proof["leaf"].encode())
    assert base64.b64encode(leaf_hash).decode() == proof["leafHash"]
    assert merkle.verify_inclusion(
        leaf_hash, proof["leafIndex"], proof["treeSize"], b64(proof["hashes"]), checkpoint.root
    )
    # the leaf is the row, with who and whose as commitments
    leaf = json.loads(proof["leaf"])
    assert (leaf["category"], leaf["purpose"], leaf["request_id"]) == (
        "contact.email",
        "support",
        target.request_id,
    )
    assert "c-3" not in proof["leaf"]
    assert "e-care" not in proof["leaf"]
    # consistency between the two checkpoints
    old = open_checkpoint(first["note"], await vkeys(gql))[0]
    answer = await gql(CONSISTENCY, {"from": old.size, "to": checkpoint.size}, token=token)
    hashes = b64(answer["data"]["auditConsistencyProof"]["hashes"])
    assert merkle.verify_consistency(old.size, checkpoint.size, old.root, checkpoint.root, hashes)
    # every call is itself a row of the log
    operations = [r.operation for r in await AuditEvent.filter(event="audit").order_by("id")]
    assert operations == [
        "signAuditCheckpoint",
        "signAuditCheckpoint",
        "auditCheckpoints",
        "auditInclusionProof",
        "auditConsistencyProof",
    ]


@pytest.mark.parametrize(
    ("query", "variables", "field"),
    [
        (INCLUSION, {"id": "abc", "size": 3}, "eventId"),
        (INCLUSION, {"id": "1\x00", "size": 3}, "eventId"),
        (INCLUSION, {"id": "9" * 30, "size": 3}, "eventId"),
        (INCLUSION, {"id": "1", "size": 9999}, "treeSize"),
        (CONSISTENCY, {"from": 0, "to": 3}, "from"),
        (CONSISTENCY, {"from": 3, "to": 2}, "to"),
        (CONSISTENCY, {"from": 1, "to": 10**6}, "to"),
    ],
)
async def test_bad_arguments_are_typed_errors(
    gql: GQL,
    services: Services,
    clock: FakeClock,
    query: str,
    variables: dict[str, Any],
    field: str,
) -> None:
    await append(rows(clock, ["c-1", "c-2", "c-3"]))
    await log_tree.integrate()
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    body = await gql(query, variables, token=token)
    assert error(body) == ("VALIDATION", field)


@pytest.mark.parametrize("value", [-1, 2**63, 1.5, "3", True, None])
async def test_a_log_index_is_a_whole_number_in_range(
    gql: GQL, services: Services, value: object
) -> None:
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    body = await gql(CONSISTENCY, {"from": value, "to": 1}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert body.get("data") is None
    assert "Traceback" not in json.dumps(body)


async def test_a_row_not_in_the_log_is_not_found(gql: GQL, services: Services) -> None:
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    await gql(SIGN, token=token)
    body = await gql(INCLUSION, {"id": "123456"}, token=token)
    assert error(body) == ("NOT_FOUND", "eventId")


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.AUDITOR])
async def test_other_roles_are_refused_and_logged(
    gql: GQL, services: Services, clock: FakeClock, role: Role
) -> None:
    await append(rows(clock, ["c-1"]))
    token, employee_id = await signed_in_employee(gql, services, role)
    for query, variables, name in (
        (SIGN, {}, "signAuditCheckpoint"),
        (CHECKPOINTS, {}, "auditCheckpoints"),
        (INCLUSION, {"id": "1", "size": 1}, "auditInclusionProof"),
        (CONSISTENCY, {"from": 1, "to": 1}, "auditConsistencyProof"),
    ):
        body = await gql(query, variables, token=token)
        assert error(body) == ("FORBIDDEN", None), name
        assert body["data"] is None or body["data"][name] is None
    denials = await AuditEvent.filter(actor_id=employee_id, decision="deny").order_by("id")
    assert [d.operation for d in denials] == [
        "signAuditCheckpoint",
        "auditCheckpoints",
        "auditInclusionProof",
        "auditConsistencyProof",
    ]
    assert not await AuditCheckpoint.exists()


async def test_a_customers_access_log_carries_evidence_they_can_check(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    token, jane = await customer(gql)
    # a staff page named Jane and two other customers in one row; another row Jane alone
    await append(rows(clock, [f"{jane},c-other-1,c-other-2", jane]))
    pending = (await gql(EVIDENCE, token=token))["data"]["me"]["accessLog"]["edges"]
    assert [e["node"]["evidence"][0]["proof"] for e in pending] == [None, None]  # not signed
    auditor, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    await gql(SIGN, token=auditor)
    body = await gql(EVIDENCE, token=token)
    entries = [e["node"] for e in body["data"]["me"]["accessLog"]["edges"]]
    assert len(entries) == 2
    keys = await vkeys(gql)
    for entry in entries:
        [evidence] = entry["evidence"]
        proof = evidence["proof"]
        assert proof["leaf"] == evidence["leaf"]
        # the customer finds their own commitment with the key they were given
        opening = bytes.fromhex(evidence["subjectKey"])
        leaf = json.loads(evidence["leaf"])
        assert leaf_format.commitment(opening, jane) in leaf["subjects"]
        assert leaf_format.commitment(opening, "c-other-1") not in leaf["subjects"]
        # the leaf names neither the employee nor the other customers
        assert "e-care" not in evidence["leaf"]
        assert "c-other" not in evidence["leaf"]
        # and it is in the signed checkpoint
        checkpoint, _ = open_checkpoint(proof["checkpoint"], keys)
        assert merkle.verify_inclusion(
            merkle.leaf_hash(evidence["leaf"].encode()),
            proof["leafIndex"],
            proof["treeSize"],
            b64(proof["hashes"]),
            checkpoint.root,
        )
    assert sorted(len(json.loads(e["evidence"][0]["leaf"])["subjects"]) for e in entries) == [1, 3]


VERIFY_WITH = """
query($checkpoints: [String!]) {
  verifyAuditLog(checkpoints: $checkpoints) { ok finding problem treeSize checkpoints }
}
"""


async def test_verify_audit_log_checks_pasted_checkpoints(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await append(rows(clock, ["c-1", "c-2", "c-3"]))
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    note = (await gql(SIGN, token=token))["data"]["signAuditCheckpoint"]["note"]
    body = await gql(VERIFY_WITH, {"checkpoints": [note]}, token=token)
    result = body["data"]["verifyAuditLog"]
    assert (result["ok"], result["finding"], result["checkpoints"]) == (True, None, 2)
    # a pasted checkpoint the log's keys did not sign is named as such
    origin, size, rest = note.split("\n", 2)
    forged = f"{origin}\n{int(size) - 1}\n{rest}"
    body = await gql(VERIFY_WITH, {"checkpoints": [forged]}, token=token)
    result = body["data"]["verifyAuditLog"]
    assert (result["ok"], result["finding"]) == (False, "SIGNATURE")
    assert result["problem"].startswith("checkpoint 1: ")


@pytest.mark.parametrize(
    "note",
    ["x" * 9000, "a\x00b\n\n— k AAAA\n", "\ud800\n", "", "only text\n", "a\r\nb"],
)
async def test_hostile_checkpoints_get_typed_answers(
    gql: GQL, services: Services, note: str
) -> None:
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    answer = await send(gql, VERIFY_WITH, {"checkpoints": [note]}, token)
    body = answer.json()
    assert answer.status_code == 200
    if "errors" in body:
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
        assert (body.get("data") or {}).get("verifyAuditLog") is None
    else:
        assert body["data"]["verifyAuditLog"]["finding"] == "SIGNATURE"
    assert "Traceback" not in json.dumps(body)


async def test_an_inclusion_proof_reads_its_row_and_leaf_in_one_statement(
    gql: GQL, services: Services, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # given a signed checkpoint over some rows, one of them a row waiting for nothing
    await append(rows(clock, [f"c-{n}" for n in range(9)]))
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    signed = (await gql(SIGN, token=token))["data"]["signAuditCheckpoint"]
    target = await AuditEvent.get(subject_id="c-4")
    # when an auditor asks for its proof in the latest checkpoint, then in a size of their own
    with statements(caplog) as latest:
        by_default = await gql(INCLUSION, {"id": str(target.id)}, token=token)
    with statements(caplog) as sized:
        by_size = await gql(INCLUSION, {"id": str(target.id), "size": 9}, token=token)
    # then both answer, the default with the latest checkpoint's note, the size with none
    assert by_default["data"]["auditInclusionProof"]["checkpoint"] == signed["note"]
    assert by_size["data"]["auditInclusionProof"]["checkpoint"] is None
    # and the row and its leaf come in one read, the checkpoint once
    for seen in (latest, sized):
        reads = [s for s in seen if "audit_leaf" in s and "audit_event" in s]
        assert len([s for s in reads if "LEFT JOIN" in s]) == 1
        assert not [s for s in seen if s.lstrip().upper().startswith("SELECT IDX, EVENT_ID, SALT")]
    assert len([s for s in latest if "audit_checkpoint" in s.lower()]) == 1
