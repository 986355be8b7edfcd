"""The fast row encodings of the log's verification (authz/log_walk.py, verifier/leaf.py
`fast_leaf_data`) are the defining ones (authz/audit.py `canonical_values`, verifier/leaf.py
`leaf_data`) byte for byte, on any input; and rows whose text the fast path handles (non
ASCII, quotes, control characters, subjects linked in another order) verify as before."""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tortoise import connections

from api.clock import FakeClock
from authz import log_tree
from authz.audit import STORED, AuditRecord, append, canonical_values
from authz.log_verify import verify_log
from authz.log_walk import _canonical, _leaf, _same_subjects, _stamp, linked_subjects
from models import AuditEvent
from tests.test_log_verify import intrude
from verifier.leaf import (
    PLAIN_ORDER,
    fast_leaf_data,
    fast_row_leaf_hash,
    leaf_data,
    row_leaf_hash,
    timestamp,
)

_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=24)
_IDS = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]) | st.just(","), max_size=8),
    max_size=6,
).map(",".join)
_TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)
_VERSIONS = st.integers(-(1 << 63), (1 << 63) - 1)


@settings(max_examples=400, deadline=None)
@given(
    plain=st.lists(_TEXT, min_size=len(PLAIN_ORDER), max_size=len(PLAIN_ORDER)),
    actor=_TEXT,
    subjects=_IDS,
    at=_TIMES,
    version=_VERSIONS,
    salt=st.binary(max_size=100),
)
def test_the_fast_leaf_is_the_defined_leaf(
    plain: list[str], actor: str, subjects: str, at: datetime, version: int, salt: bytes
) -> None:
    row: dict[str, object] = dict(zip(PLAIN_ORDER, plain, strict=True))
    row.update(actor_id=actor, subject_id=subjects, at=at, policy_version=version)
    fast = fast_leaf_data(plain, actor, subjects, timestamp(at), version, salt)
    assert fast == leaf_data(row, salt)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(_TEXT | st.none(), min_size=len(STORED), max_size=len(STORED)),
    subjects=_IDS | st.none(),
    actor=_TEXT | st.none(),
    version=st.none() | _VERSIONS | st.just("7"),
    at=_TIMES,
    as_text=st.booleans(),
    salt=st.binary(max_size=100),
)
def test_the_integrated_leaf_hash_is_the_defined_one(
    texts: list[str | None],
    subjects: str | None,
    actor: str | None,
    version: object,
    at: datetime,
    as_text: bool,
    salt: bytes,
) -> None:
    # a row as the database hands it to log_tree.integrate: text or null, the time as
    # text on SQLite, the version an int, null or (from an odd store) text
    row: dict[str, object] = dict(zip(STORED, texts, strict=True))
    row.update(subject_id=subjects, actor_id=actor, policy_version=version)
    row["at"] = str(at) if as_text else at
    assert fast_row_leaf_hash(row, salt) == row_leaf_hash(row, salt)


def _values(fields: dict[str, object]) -> list[object]:
    return [fields[name] for name in STORED]


@settings(max_examples=400, deadline=None)
@given(
    texts=st.lists(_TEXT, min_size=len(STORED), max_size=len(STORED)),
    conditions=st.sampled_from(["", "open_case", "self,open_case"]) | _TEXT,
    version=st.sampled_from([0, 1]) | _VERSIONS,
    at=_TIMES,
    as_text=st.booleans(),
)
def test_the_fast_chain_encoding_is_the_defined_one(
    texts: list[str], conditions: str, version: int, at: datetime, as_text: bool
) -> None:
    fields: dict[str, object] = dict(zip(STORED, texts, strict=True))
    fields.update(conditions=conditions, policy_version=version, at=at)
    stored = _values({**fields, "at": str(at) if as_text else at})  # SQLite stores text
    stamp = _stamp(stored[STORED.index("at")])
    assert stamp == timestamp(at)
    assert _canonical(stored, stamp) == canonical_values(_values(fields))
    salt = bytes(range(16))
    assert _leaf(stored, stamp, salt) == row_leaf_hash(fields, salt)


@pytest.mark.parametrize(
    ("field", "value"),
    [("category", None), ("reason", 7), ("actor_id", None), ("policy_version", "3")],
)
def test_values_of_other_types_take_the_defining_path(field: str, value: object) -> None:
    at = datetime(2025, 5, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    fields: dict[str, object] = dict.fromkeys(STORED, "x")
    fields.update(at=at, policy_version=0, conditions="", subject_id="a,b")
    fields[field] = value
    stored = _values(fields)
    stamp = _stamp(at)
    assert _canonical(stored, stamp) == canonical_values(stored)
    if field != "policy_version":  # leaf_data refuses a version that is not a number
        assert _leaf(stored, stamp, b"s" * 16) == row_leaf_hash(fields, b"s" * 16)


def test_a_naive_time_fails_as_the_chain_fails() -> None:
    with pytest.raises(TypeError):
        canonical_values(_values({**dict.fromkeys(STORED, ""), "at": datetime(2025, 1, 1)}))
    with pytest.raises(TypeError):
        _stamp("2025-01-01 00:00:00")
    with pytest.raises(ValueError, match="month must be in"):
        _stamp("2025-13-01 00:00:00+00:00")


@pytest.mark.parametrize("in_tree", [True, False])
def test_subjects_compare_as_sets(in_tree: bool) -> None:
    assert _same_subjects(["a", "b"], "a,b", in_tree)
    assert _same_subjects(["b", "a"], "a,b,a", in_tree)
    assert _same_subjects([], "", in_tree)
    assert not _same_subjects(["a"], "a,b", in_tree)
    assert not _same_subjects(["a", "b", "c"], "a,b", in_tree)
    assert not _same_subjects(["a,b"], "a", in_tree)
    # one link naming "a,b" hides the row from a and from b; an empty link names no one
    assert not _same_subjects(["a,b"], "a,b", in_tree)
    assert not _same_subjects(["a", ""], "a,", in_tree)
    # a row is indexed when it joins the tree: until then, no index is its index
    assert _same_subjects([], "a,b", in_tree) is not in_tree


def test_lists_link_their_ids_in_their_own_block_only() -> None:
    lists = [
        (0, "a", "3,1"),
        (0, "b", "1"),
        (1, "a", "1024,5"),
        (1, "c", "x,,1025,-1,+1026"),
        (1, "d", "1_027, 1028"),  # what int() would take, no id as the follower writes one
    ]
    assert linked_subjects(lists) == {
        1: ["a", "b"],
        3: ["a"],
        1024: ["a"],
        1025: ["c"],
        1026: ["c"],
    }


def _odd(clock: FakeClock, n: int) -> AuditRecord:
    return AuditRecord(
        at=clock.now(),
        actor_kind="employee",
        actor_id=f"é-{n}",
        roles="customer_care",
        event="access",
        decision="allow",
        category="contact.email",
        action="read",
        purpose="support",
        reason=f'quote " backslash \\ tab \t newline \n {string.printable[n % 50]} ✓',
        subject_id=",".join(sorted({f"c-{n}", f"ü-{n + 1}", f"c-{n + 2}"})),
        conditions="open_case" if n % 2 else "",
        policy_version=n % 3,
    )


async def test_rows_of_any_text_verify_and_links_in_any_order(clock: FakeClock) -> None:
    for n in range(9):
        await append([_odd(clock, n)])
        clock.advance(seconds=1, microseconds=n * 7)  # some times without microseconds
    await log_tree.integrate()
    result = await verify_log(batch=4)
    assert (result.ok, result.checked, result.tree_size) == (True, 9, 9), result.problem
    target = (await AuditEvent.all().order_by("id"))[4]
    conn = connections.get("default")
    lists = await conn.execute_query_dict(
        "SELECT subject_id, first_id, event_ids FROM audit_posting"
    )
    # the same lists, their ids written back in the reverse order: the index still agrees
    await intrude(
        ";".join(
            "UPDATE audit_posting SET event_ids = "
            f"'{','.join(reversed(r['event_ids'].split(',')))}' "
            f"WHERE subject_id = '{r['subject_id']}' AND first_id = {r['first_id']}"
            for r in lists
        )
    )
    assert (await verify_log()).ok
    # and the row's id taken out of one of its subject's lists is named
    holding = next(r for r in lists if str(target.id) in r["event_ids"].split(","))
    kept = ",".join(i for i in holding["event_ids"].split(",") if i != str(target.id))
    await intrude(
        f"UPDATE audit_posting SET event_ids = '{kept}' "
        f"WHERE subject_id = '{holding['subject_id']}' AND first_id = {holding['first_id']}"
    )
    result = await verify_log(batch=3)
    assert (result.ok, result.kind, result.first_broken_id) == (False, "edited", target.id)
    assert result.problem == "its subject index was altered"
    assert (result.checked, result.tree_size) == (4, 4)


async def test_a_leaf_salt_of_another_length_is_named(clock: FakeClock) -> None:
    for n in range(3):
        await append([_odd(clock, n)])
    await log_tree.integrate()
    target = (await AuditEvent.all().order_by("id"))[2]
    await intrude(f"UPDATE audit_leaf SET salt = '{'ab' * 15}' WHERE event_id = {target.id}")
    result = await verify_log()
    assert (result.kind, result.first_broken_id, result.checked) == ("edited", target.id, 2)
    assert result.problem == "its content does not match its leaf"
