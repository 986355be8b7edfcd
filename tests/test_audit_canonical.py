"""A decision-log row's canonical bytes (what its hash covers) are the standard library's
compact JSON with every character past ASCII escaped, whichever encoder writes them:
authz/audit.py lets orjson write rows of plain ASCII (a page's subject ids) and the
standard library everything else. Any change of a byte would break every chain written
before, so the two are compared on any row of the types a row holds, and on the values where
the encoders differ."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authz.audit import STORED, _encoded, canonical_values

_REFERENCE = json.JSONEncoder(separators=(",", ":")).encode

_values = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=())),  # lone surrogates too
    st.text(alphabet=st.characters(max_codepoint=127)),  # ASCII, controls and DEL included
    st.integers(),  # past 64 bits too
    st.booleans(),
    st.none(),
)


@given(st.lists(_values, max_size=20))
def test_any_row_is_written_as_the_standard_library_writes_it(row: list[object]) -> None:
    assert _encoded(row) == _REFERENCE(row).encode()


@pytest.mark.parametrize(
    "value",
    ["\x7f", "caf\u00e9", "\ud800", 2**64, 2**63, -(2**63) - 1, '\x00\x1f"\\/', 1.5, "\u2028"],
    ids=["DEL", "accent", "surrogate", "2^64", "2^63", "below -2^63", "controls", "float", "ls"],
)
def test_the_values_where_the_encoders_differ_are_written_by_the_standard_library(
    value: object,
) -> None:
    row = ["a", value, None]
    assert _encoded(row) == _REFERENCE(row).encode()


def test_a_page_of_subjects_hashes_as_before() -> None:
    # given a row as a staff page logs it: a hundred subject ids in one field
    values: list[object] = ["x"] * len(STORED)
    values[STORED.index("at")] = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    values[STORED.index("subject_id")] = ",".join(
        f"{n:08x}-0000-4000-8000-000000000000" for n in range(100)
    )
    values[STORED.index("policy_version")] = 7
    # then its bytes are the standard library's
    expected = list(values)
    expected[STORED.index("at")] = "2026-12-03T07:00:00.000000+00:00"
    assert canonical_values(values) == _REFERENCE(expected).encode()
