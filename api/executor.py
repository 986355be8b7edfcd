"""graphql-core's executor with one shortcut: an object's fields are executed from a plan made
once per selection in a request, and a field that shows an attribute of its object, guarded
or not (api/guards.py's plain resolvers), is answered without a resolve info.

For every field it resolves, graphql-core builds a resolve info, looks the field up in the
schema, calls the resolver through a generic path (arguments, awaitables) and completes the
value through another (lists, objects, abstract types, leaves); for every object it collects
the selection again through four calls. A page of 100 customers resolves 700 fields. Here
the first object of a selection makes its plan (`Step`s: the field, whether it can be
answered directly, its leaf or object type); every further object of that selection runs the
plan: a direct field's `value_of(source, context, nodes, parent_path, key)` gives the value
(no path object is built for it unless it is needed: an object's fields, an error),
completed as graphql-core's `complete_value` completes a scalar, an enum or an object, with
its errors. An object's guarded attributes are decided together, at the first of them
(Context.read_fields: one lookup and one note of the subject per decision, not per field);
each then shows its value, masked, or null with its FORBIDDEN error. Lists, abstract types,
fields with arguments or resolvers of their own, `__typename`, selections with `@defer` and
anything under middleware take graphql-core's path, step by step. The guard's decision and
log row are the same on both paths (tests/test_request_path.py compares them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

from graphql import (
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.language import FieldNode
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.context import Read

_FULL, _DENIED = Read.FULL, Read.DENIED


class Step(NamedTuple):
    """One field of a selection's plan; `value_of` None: graphql-core's own path."""

    key: str  # the response name
    details: FieldDetailsList
    nodes: list[FieldNode]
    value_of: Callable[..., Any] | None
    return_type: GraphQLOutputType
    leaf: GraphQLLeafType | None
    object_type: GraphQLObjectType | None
    plan: Plan | None  # an object step's own plan, when it has one
    label: str  # Type.field, for errors
    guard_at: int  # a guarded attribute: its index in the plan's categories; else -1
    category: str  # a guarded attribute's category
    attribute: str  # a guarded attribute's name


class Plan(NamedTuple):
    steps: tuple[Step, ...]
    categories: tuple[str, ...]  # the guarded attributes' categories, in step order


class CustosExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (id(type), id(details)) -> (details, plan): the details kept alive with their id
        self._plans: dict[tuple[int, int], tuple[FieldDetailsList, Plan | None]] = {}

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan_of(return_type, field_details_list) if position_context is None else None
        if plan is None:
            return super().collect_and_execute_subfields(
                return_type, field_details_list, path, result, position_context
            )
        return self._execute_plan(return_type, plan, path, result)

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> Any:
        """A list of objects that have a plan, item by item without graphql-core's five
        calls each; anything else (a null or awaitable item, `@stream`) as graphql-core."""
        named = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        plan = None
        if (
            position_context is None
            and isinstance(named, GraphQLObjectType)
            and not named.is_type_of
            and not any(d.node.directives for d in field_details_list)
        ):
            plan = self._plan_of(named, field_details_list)
        if plan is None or not isinstance(named, GraphQLObjectType):
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )
        completed: list[Any] = []
        later: list[int] = []
        try:
            self._complete_items(
                named, plan, item_type, field_details_list, info, path, items, completed, later
            )
        except Exception:  # a non-null item failed: what is still running is settled
            if later:
                self.settle_in_background([completed[i] for i in later])
            raise
        return self._filled_later(completed, later) if later else completed

    def _complete_items(
        self,
        named: GraphQLObjectType,
        plan: Plan,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        items: Iterable[Any],
        completed: list[Any],
        later: list[int],
    ) -> None:
        """`complete_iterable_value`'s loop: each item into `completed`, the index of each
        one that completes later into `later`."""
        is_awaitable = self.is_awaitable
        for index, item in enumerate(items):
            item_path = Path(path, index, None)
            if item is None or is_awaitable(item):
                if is_awaitable(item):
                    completed.append(
                        self.complete_awaitable_list_item_value(
                            item, item_type, field_details_list, info, item_path, None
                        )
                    )
                    later.append(index)
                elif self.complete_list_item_value(
                    item, completed, item_type, field_details_list, info, item_path, None
                ):
                    later.append(index)
                continue
            try:
                value = self._execute_plan(named, plan, item_path, item)
            except Exception as raw_error:
                self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                value = None
            if is_awaitable(value):
                value = self._later(value, item_type, field_details_list, item_path)
                later.append(index)
            completed.append(value)

    def _plan_of(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> Plan | None:
        key = (id(parent_type), id(details))  # the type lives as long as the schema
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        grouped, defer_usages, _ = self.collect_subfields(parent_type, details)
        plan = None
        if not defer_usages and not self.middleware_manager:
            steps = []
            categories: list[str] = []
            for response_key, field_details in grouped.items():
                step = self._step(parent_type, response_key, field_details)
                if step.guard_at >= 0:
                    step = step._replace(guard_at=len(categories))
                    categories.append(step.category)
                steps.append(step)
            plan = Plan(tuple(steps), tuple(categories))
        self._plans[key] = (details, plan)
        return plan

    def _step(self, parent_type: GraphQLObjectType, key: str, details: FieldDetailsList) -> Step:
        nodes = [d.node for d in details]
        field_def = self.schema.get_field(parent_type, nodes[0].name.value)
        resolve = field_def.resolve if field_def else None
        guard = getattr(resolve, "guard", None)  # a guarded attribute (api/guards.py)
        value_of = resolve.shown if guard is not None else getattr(resolve, "value_of", None)  # type: ignore[union-attr]
        label = f"{parent_type.name}.{nodes[0].name.value}"
        step = Step(key, details, nodes, None, None, None, None, None, label, -1, "", "")  # type: ignore[arg-type]
        if value_of is None or nodes[0].arguments:
            return step
        return_type = field_def.type  # type: ignore[union-attr]
        named = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        if guard is not None:
            step = step._replace(guard_at=0, category=guard.category, attribute=resolve.attribute)  # type: ignore[union-attr]
        if is_leaf_type(named):
            return step._replace(value_of=value_of, return_type=return_type, leaf=named)
        if isinstance(named, GraphQLObjectType) and not named.is_type_of:
            return step._replace(
                value_of=value_of,
                return_type=return_type,
                object_type=named,
                plan=self._plan_of(named, details),
            )
        return step._replace(guard_at=-1)

    def _execute_plan(
        self, parent_type: GraphQLObjectType, plan: Plan, path: Path, source: Any
    ) -> Any:
        """graphql-core's `execute_fields`, each direct step answered in place; an error
        handled as graphql-core does (null for a nullable field, raised to the parent for
        a non-null one)."""
        results: dict[str, Any] = {}
        later: list[str] = []
        context = self.context_value
        is_awaitable = self.is_awaitable
        typename = parent_type.name
        reads = None  # the object's guarded fields, decided together at the first of them
        try:
            for step in plan.steps:
                key, details, nodes, value_of, return_type, leaf, object_type, sub_plan = step[:8]
                if value_of is None:
                    completed = self.execute_field(
                        parent_type,
                        source,
                        details,
                        Path(path, key, typename),
                        None,
                    )
                    if completed is Undefined:
                        continue
                    results[key] = completed
                    if is_awaitable(completed):
                        later.append(key)
                    continue
                field_path = None  # built only when needed: a guard is given path and key
                try:
                    at = step.guard_at
                    if at < 0:
                        value = value_of(source, context, nodes, path, key)
                    else:
                        if reads is None:
                            reads = context.read_fields(plan.categories, source.access)
                        outcome = reads[0][at]
                        if outcome is _FULL:
                            value = getattr(source, step.attribute)
                        elif outcome is _DENIED:
                            purpose = source.access.purpose
                            context.deny_field(
                                nodes, path, key, step.category, purpose, reads[1][at]
                            )
                            value = None
                        else:  # masked, or denied for want of a mask: the guard's own rule
                            denial = reads[1][at]
                            value = value_of(outcome, denial, source, context, nodes, path, key)
                    if isinstance(value, Exception):
                        raise value
                    if value is None or value is Undefined:
                        completed = None
                    elif leaf is not None:
                        completed = leaf.coerce_output_value(value)
                        if completed is Undefined or completed is None:
                            self.complete_leaf_value(leaf, value)  # raises its TypeError
                    else:
                        field_path = field_path or Path(path, key, typename)
                        if sub_plan is not None:
                            completed = self._execute_plan(
                                object_type,  # type: ignore[arg-type]  # an object step
                                sub_plan,
                                field_path,
                                value,
                            )
                        else:
                            completed = self.complete_object_value(
                                object_type,  # type: ignore[arg-type]  # an object step
                                details,
                                None,  # type: ignore[arg-type]  # no is_type_of: no info needed
                                field_path,
                                value,
                                None,
                            )
                        if is_awaitable(completed):
                            completed = self._later(completed, return_type, details, field_path)
                            later.append(key)
                    if completed is None and isinstance(return_type, GraphQLNonNull):
                        raise TypeError(f"Cannot return null for non-nullable field {step.label}.")
                except Exception as raw_error:
                    field_path = field_path or Path(path, key, typename)
                    self.handle_field_error(raw_error, return_type, details, field_path)
                    completed = None
                results[key] = completed
        except Exception:
            if later:
                self.settle_in_background([results[k] for k in later])
            raise
        return self._filled_later(results, later) if later else results

    async def _later(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
    ) -> Any:
        """A value that completes later: errors handled as graphql-core does."""
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None

    @staticmethod
    async def _filled_later(completed: Any, later: list[Any]) -> Any:
        """An object's fields (by name) or a list's items (by index) with the values that
        complete later awaited in place, together, as graphql-core's executor does."""
        if len(later) == 1:
            completed[later[0]] = await completed[later[0]]
            return completed
        values = await gather_with_cancel(*(completed[k] for k in later))
        for key, value in zip(later, values, strict=True):
            completed[key] = value
        return completed
