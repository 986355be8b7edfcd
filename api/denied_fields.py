"""A denied field's FORBIDDEN entry of `errors`, as JSON text (api/context.py `deny_field`).

An entry is its message, its locations in the query, its path and its extensions. All but
the path of the field's parent follow from the query's text and the field's place in it,
the response key, the category, the purpose, the decision and the policy version. Those
parts are worked out once per process for each such combination and kept, not once per
request: a client asking again for a page whose fields are denied pays for no JSON
encoding of messages, locations and extensions (9 fields of a page of 100 under 3
decisions cost about a tenth of the denied page's extra CPU, measured). What is kept is a
function of its key alone, so no viewer is shown anything another viewer's request
decided. The cache is bounded twice: queries longer than `_KEPT_QUERY_CHARS` are not kept
(their parts are worked out as before), and it is emptied when it holds `_KEPT_ENTRIES`."""

from __future__ import annotations

import json
from typing import Any

from graphql import FieldNode
from graphql.language.location import FormattedSourceLocation

from authz.enforcer import Decision

Denied = tuple[Any, str, str, str, str, str]
"""A denied field's error as JSON, the same wherever the field is, for (decision, purpose,
category): up to its parent's path items; whole, for a field at the root; from the field's
own item on, below a parent."""

_KEPT_QUERY_CHARS = 4_096
_KEPT_ENTRIES = 1_024
_KEPT: dict[tuple[object, ...], Denied] = {}


def forbidden_extensions(decision: Decision, policy_version: int) -> dict[str, Any]:
    """A FORBIDDEN error's extensions: the stable reason code, the condition unmet or the
    rule that decided (when there is one) and the policy version in force, so that an
    employee can tell why without reading the log."""
    extensions: dict[str, Any] = {"code": "FORBIDDEN", "reason": decision.code}
    if decision.condition:
        extensions["condition"] = decision.condition
    if decision.rule:
        extensions["rule"] = decision.rule
    extensions["policyVersion"] = policy_version
    return extensions


def locations(nodes: list[FieldNode]) -> list[FormattedSourceLocation]:
    """The field's places in the query, as a GraphQLError made from `nodes` lists them
    (without making one)."""
    return [
        node.loc.source.get_location(node.loc.start).formatted
        for node in nodes
        if node.loc is not None and node.loc.source is not None
    ]


def shared_denial(
    nodes: list[FieldNode],
    key: str,
    category: str,
    purpose: str,
    decision: Decision,
    policy_version: int,
) -> Denied:
    """The parts of a denied field's entry that do not depend on where its parent is."""
    place = _place(nodes)
    if place is None:
        return _written(nodes, key, category, purpose, decision, policy_version)
    kept_key = (place, key, category, purpose, decision, policy_version)
    kept = _KEPT.get(kept_key)
    if kept is None:
        if len(_KEPT) >= _KEPT_ENTRIES:
            _KEPT.clear()
        kept = _KEPT[kept_key] = _written(nodes, key, category, purpose, decision, policy_version)
    return kept if kept[0] is decision else (decision, *kept[1:])


def _place(nodes: list[FieldNode]) -> tuple[object, ...] | None:
    """The query's text and where each node starts in it, which fix the locations; None
    for a query too long to keep, or nodes without a place."""
    loc = nodes[0].loc
    if loc is None or loc.source is None or len(loc.source.body) > _KEPT_QUERY_CHARS:
        return None
    starts = []
    for node in nodes:
        if node.loc is None or node.loc.source is not loc.source:
            return None
        starts.append(node.loc.start)
    return (loc.source.body, *starts)


def _written(
    nodes: list[FieldNode],
    key: str,
    category: str,
    purpose: str,
    decision: Decision,
    policy_version: int,
) -> Denied:
    message = f"Not allowed to read {category} for purpose {purpose}."
    extensions = forbidden_extensions(decision, policy_version)
    start = {"message": message, "locations": locations(nodes)}
    head = _json(start)[:-1] + ',"path":['
    tail = f'{item(key)}],"extensions":{_json(extensions)}}}'
    return (decision, purpose, category, head, head + tail, "," + tail)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def item(key: str | int) -> str:
    """A response path's key as JSON: a GraphQL name (letters, digits, underscores: nothing
    to escape) or a list index."""
    return f'"{key}"' if isinstance(key, str) else str(key)
