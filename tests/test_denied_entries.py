"""A denied field's FORBIDDEN entry names the field's own path, whatever the shape of the
response around it (api/context.py `deny_field`, `denied_errors`): objects in lists, lists
of lists, aliases, fields at the root, siblings denied one after another or with other
fields between them. The entries are written once the page is built, from the parent path
of each denied field; this checks every entry against graphql-core's own `Path.as_list`."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from graphql import FieldNode, GraphQLError, parse
from graphql.pyutils import Path
from hypothesis import given, settings
from hypothesis import strategies as st

from api.context import Context
from authz.enforcer import Decision, Denial

_NO_RULE = Decision(False, "", "no rule", Denial.NO_RULE)
_QUERY = parse("{ a { b c } }")


def _context() -> Context:
    services: Any = SimpleNamespace(authorizer=SimpleNamespace(version=7))
    return Context(
        request=None,  # type: ignore[arg-type]  # a denial reads none of these
        response=None,  # type: ignore[arg-type]
        services=services,
        viewer=None,  # type: ignore[arg-type]
        request_id="r",
        audit=None,  # type: ignore[arg-type]
    )


def _nodes(name: str) -> list[FieldNode]:
    field = _QUERY.definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
    return [field.selection_set.selections[0 if name == "b" else 1]]


_KEYS = st.one_of(st.integers(0, 10_000), st.sampled_from(["edges", "node", "x_1", "nodes"]))


@st.composite
def _paths(draw: st.DrawFn) -> list[Path]:
    """Field paths sharing prefixes, as a response's do: each a parent path (any mix of
    names and list indexes, reused from earlier fields or new) plus the field's name."""
    parents: list[Path | None] = [None]
    fields = []
    for _ in range(draw(st.integers(1, 40))):
        parent = draw(st.sampled_from(parents))
        for key in draw(st.lists(_KEYS, max_size=4)):
            parent = Path(parent, key, None)
            parents.append(parent)
        fields.append(Path(parent, draw(st.sampled_from(["b", "c"])), "T"))
    return fields


@settings(max_examples=300, deadline=None)
@given(paths=_paths())
def test_each_denied_entry_names_its_fields_path(paths: list[Path]) -> None:
    context = _context()
    for path in paths:
        context._last_denial = _NO_RULE
        key = str(path.key)
        context.deny_field(_nodes(key), path.prev, key, "contact.email", "LEGAL")
    entries = [json.loads(entry) for entry in context.denied_errors()]
    assert [entry["path"] for entry in entries] == [path.as_list() for path in paths]
    for entry in entries:
        assert entry["message"] == "Not allowed to read contact.email for purpose LEGAL."
        assert entry["extensions"] == {"code": "FORBIDDEN", "reason": "NO_RULE", "policyVersion": 7}
        assert entry["locations"]  # the field's place in the query


def test_a_page_of_objects_in_a_list_gets_its_indexes_and_names() -> None:
    context = _context()
    edges = Path(Path(None, "customers", "Query"), "edges", "Connection")
    for index in range(3):
        node = Path(Path(edges, index, None), "node", "Edge")
        for name in ("b", "c"):
            context._last_denial = _NO_RULE
            context.deny_field(_nodes(name), node, name, "contact.email", "LEGAL")
    paths = [json.loads(entry)["path"] for entry in context.denied_errors()]
    assert paths == [
        ["customers", "edges", i, "node", name] for i in range(3) for name in ("b", "c")
    ]


def test_an_entry_places_its_field_where_graphql_core_does() -> None:
    # given a field asked for twice (an alias merged with its name) on two lines
    query = parse("query {\n  a { b }\n  a {\r\n    b\n  }\n}")
    nodes = [
        definition.selection_set.selections[0]
        for definition in query.definitions[0].selection_set.selections  # type: ignore[attr-defined]
    ]
    context = _context()
    context._last_denial = _NO_RULE
    context.deny_field(nodes, None, "b", "contact.email", "LEGAL")
    [entry] = [json.loads(e) for e in context.denied_errors()]
    # then its locations are those of a GraphQLError made from the same nodes
    expected = GraphQLError("", nodes=nodes).formatted["locations"]
    assert entry["locations"] == expected == [{"line": 2, "column": 7}, {"line": 4, "column": 5}]


def _root_field(text: str) -> list[FieldNode]:
    """A new parse of `text` (as each request makes), its first root field's nodes."""
    return [parse(text).definitions[0].selection_set.selections[0]]  # type: ignore[attr-defined]


def _entry(nodes: list[FieldNode], version: int = 7, purpose: str = "LEGAL") -> str:
    context = _context()
    context.services.authorizer.version = version
    context._last_denial = _NO_RULE
    context.deny_field(nodes, None, "b", "contact.email", purpose)
    [entry] = context.denied_errors()
    return entry


def test_requests_asking_the_same_denied_field_share_its_entry() -> None:
    # given two requests, each parsing the same query text
    first = _entry(_root_field("{ b }"))
    second = _entry(_root_field("{ b }"))
    # then the second is handed the entry the first request wrote, not written again
    assert second is first
    assert json.loads(second)["extensions"]["policyVersion"] == 7


def test_a_kept_entry_is_never_handed_to_a_different_field_decision_or_policy() -> None:
    kept = _entry(_root_field("{ b }"))
    moved = _entry(_root_field("{  b }"))  # the same field one column further
    newer = _entry(_root_field("{ b }"), version=8)
    other = _entry(_root_field("{ b }"), purpose="MARKETING")
    assert json.loads(moved)["locations"] == [{"line": 1, "column": 4}]
    assert json.loads(kept)["locations"] == [{"line": 1, "column": 3}]
    assert json.loads(newer)["extensions"]["policyVersion"] == 8
    assert "purpose MARKETING" in json.loads(other)["message"]


def test_long_queries_are_not_kept_and_the_cache_stays_bounded() -> None:
    from api import denied_fields

    long_query = "{ b }" + " " * denied_fields._KEPT_QUERY_CHARS
    first = _entry(_root_field(long_query))
    assert _entry(_root_field(long_query)) == first  # the same text...
    assert _entry(_root_field(long_query)) is not first  # ...written anew, not kept
    for column in range(denied_fields._KEPT_ENTRIES + 10):
        _entry(_root_field("{" + " " * column + "b }"))
    assert len(denied_fields._KEPT) <= denied_fields._KEPT_ENTRIES
