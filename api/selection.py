"""What a query selects below a field, so that a resolver loads only what will be read.

Names are the schema's field names (not aliases), through inline fragments and fragment
spreads. `@skip` and `@include` are ignored: a field they leave out still counts, so the
answer errs on the side of loading."""

from __future__ import annotations

from typing import Any

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode


def _fields(selection_set: SelectionSetNode | None, fragments: dict[str, Any]) -> list[FieldNode]:
    found: list[FieldNode] = []
    pending = [selection_set]
    seen: set[str] = set()  # a fragment spread twice (or in a cycle) is read once
    while pending:
        current = pending.pop()
        for selection in current.selections if current else ():
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = fragments.get(selection.name.value)
                pending.append(fragment.selection_set if fragment else None)
    return found


_KEPT = 1024
_answers: dict[tuple[int, tuple[str, ...]], tuple[FieldNode, frozenset[str]]] = {}
"""Answers per field of a parsed document (parsed documents are cached and reused, so
the same field asks again on every request); the node is held, so its id is not reused."""


def selected_names(info: Any, *path: str) -> frozenset[str]:
    """The names selected on the value the resolving field returns, or, with `path`, on
    what is reached from it through those fields (e.g. "edges", "node" on a connection)."""
    raw = info._raw_info
    first = raw.field_nodes[0]
    key = (id(first), path)
    kept = _answers.get(key)
    if kept is not None and kept[0] is first and len(raw.field_nodes) == 1:
        return kept[1]
    fragments = raw.fragments
    nodes: list[FieldNode] = list(raw.field_nodes)
    for step in path:
        nodes = [
            field
            for node in nodes
            for field in _fields(node.selection_set, fragments)
            if field.name.value == step
        ]
    names = frozenset(
        field.name.value for node in nodes for field in _fields(node.selection_set, fragments)
    )
    if len(raw.field_nodes) == 1:
        if len(_answers) >= _KEPT:
            del _answers[next(iter(_answers))]  # the oldest
        _answers[key] = (first, names)
    return names
