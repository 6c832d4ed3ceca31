"""The plan: the fields of each selection with everything static found once, and how they run,
step for step as graphql-core's Executor (execute_fields, execute_field, complete_object_value):
order of resolver calls, concurrency (one awaitable is awaited, several gathered with cancellation)
and errors are the Executor's, so that a plan's result is the one `execute()` would give.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from graphql import FieldNode, GraphQLError, GraphQLField, GraphQLObjectType, Undefined
from graphql.execution import get_argument_values
from graphql.pyutils import Path, gather_with_cancel, inspect
from strawberry.execution import optimized_is_awaitable as is_awaitable

from schema.compiled.completers import Completer, Leaf
from schema.compiled.run import Run


class ObjectPlan(Completer):
    """An object type with the fields selected on it (Executor.complete_object_value)."""

    __slots__ = ("fields", "is_type_of", "nodes", "type")

    def __init__(self, type_: GraphQLObjectType, nodes: list[FieldNode]) -> None:
        self.type = type_
        self.nodes = nodes
        self.is_type_of = type_.is_type_of
        self.fields: list[FieldPlan] = []

    def complete(self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        if result is None or result is Undefined:
            return None
        return self.complete_object(run, field, info, path, result)

    def complete_object(self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any) -> Any:
        if self.is_type_of is not None:
            is_type_of = self.is_type_of(result, info)
            if is_awaitable(is_type_of):
                return self._check_then_execute(run, path, result, is_type_of)  # type: ignore[arg-type]
            if not is_type_of:
                raise self.invalid(result)
        return execute_fields(run, self.fields, result, path)

    async def _check_then_execute(self, run: Run, path: Path, result: Any, is_type_of: Awaitable[bool]) -> Any:
        if not await is_type_of:
            raise self.invalid(result)
        fields = execute_fields(run, self.fields, result, path)
        return await fields if is_awaitable(fields) else fields

    def invalid(self, result: Any) -> GraphQLError:
        return GraphQLError(f"Expected value of type '{self.type}' but got: {inspect(result)}.", self.nodes)


#: Classes whose values `is_awaitable` answers False for at once (a subset of Strawberry's own list).
NEVER_AWAITABLE = frozenset({type(None), bool, int, float, str, list, dict})

#: How a field gets its value.
BASIC, TYPENAME, RESOLVER = 0, 1, 2


class FieldPlan:
    """One response key of a selection: Executor.execute_field with everything static found once."""

    __slots__ = (
        "completer",
        "definition",
        "first_node",
        "getter",
        "has_args",
        "key",
        "kind",
        "leaf",
        "name",
        "needs_info",
        "nodes",
        "parent_name",
        "parent_type",
        "python_name",
        "resolve",
        "return_type",
    )

    def __init__(
        self,
        key: str,
        parent_type: GraphQLObjectType,
        definition: GraphQLField,
        nodes: list[FieldNode],
        kind: int,
        resolve: Callable[..., Any] | None,
        python_name: str,
        needs_info: bool,
    ) -> None:
        self.key = key
        self.parent_type = parent_type
        self.parent_name = parent_type.name
        self.definition = definition
        self.return_type = definition.type
        self.nodes = nodes
        self.first_node = nodes[0]
        self.name = nodes[0].name.value
        self.kind = kind
        self.getter = resolve
        self.resolve = resolve
        self.python_name = python_name
        self.has_args = bool(definition.args or self.first_node.arguments)
        self.needs_info = needs_info
        self.completer: Completer = Completer()
        #: the completer when this is an attribute read into a scalar or enum (set by the compiler)
        self.leaf: Leaf | None = None

    def execute(self, run: Run, source: Any, parent_path: Path | None) -> Any:
        leaf = self.leaf
        if leaf is not None:  # an attribute read into a scalar: the path is made only when needed
            try:
                result = self.getter(source, self.python_name)  # type: ignore[misc]
                if result.__class__ is leaf.passthrough:  # neither awaitable nor changed by coercion
                    return result
                if type(result) in NEVER_AWAITABLE or not is_awaitable(result):
                    completed = leaf.value(result)
                    if type(completed) in NEVER_AWAITABLE or not is_awaitable(completed):
                        return completed
                    path = Path(parent_path, self.key, self.parent_name)
                    return run.await_completed(completed, self.return_type, self, path)
            except Exception as raw_error:
                path = Path(parent_path, self.key, self.parent_name)
                run.handle_field_error(raw_error, self.return_type, self.nodes, path)
                return None
            path = Path(parent_path, self.key, self.parent_name)
            return run.complete_awaitable(leaf, self, None, path, result, self.return_type)
        path = Path(parent_path, self.key, self.parent_name)
        info = run.info(self, path) if self.needs_info else None
        try:
            if self.kind == BASIC:
                result = self.getter(source, self.python_name)  # type: ignore[misc]
            elif self.kind == TYPENAME:
                return self.parent_name
            else:
                args = get_argument_values(self.definition, self.first_node, run.variables) if self.has_args else {}
                result = self.resolve(source, info, **args)  # type: ignore[misc]
            if type(result) not in NEVER_AWAITABLE and is_awaitable(result):
                return run.complete_awaitable(self.completer, self, info, path, result, self.return_type)
            completed = self.completer.complete(run, self, info, path, result)
            if type(completed) not in NEVER_AWAITABLE and is_awaitable(completed):
                return run.await_completed(completed, self.return_type, self, path)
        except Exception as raw_error:
            run.handle_field_error(raw_error, self.return_type, self.nodes, path)
            return None
        return completed


def execute_fields(run: Run, fields: list[FieldPlan], source: Any, path: Path | None) -> Any:
    """Executor.execute_fields: every field called in order, their awaitables awaited together."""
    results: dict[str, Any] = {}
    awaitable_keys: list[str] = []
    try:
        for field in fields:
            result = field.execute(run, source, path)
            results[field.key] = result
            if type(result) not in NEVER_AWAITABLE and is_awaitable(result):
                awaitable_keys.append(field.key)
    except Exception:
        if awaitable_keys:
            run.settle_in_background([results[key] for key in awaitable_keys])
        raise
    if not awaitable_keys:
        return results
    return _gather_fields(results, awaitable_keys)


async def _gather_fields(results: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    if len(keys) == 1:
        key = keys[0]
        results[key] = await results[key]
    else:
        values = await gather_with_cancel(*(results[key] for key in keys))
        results.update(zip(keys, values, strict=True))
    return results


def execute_fields_serially(run: Run, fields: list[FieldPlan], source: Any) -> Any:
    """Executor.execute_fields_serially (mutations): each field once the one before has finished."""
    results: dict[str, Any] = {}
    for position, field in enumerate(fields):
        result = field.execute(run, source, None)
        if is_awaitable(result):
            return _continue_serially(run, fields, position, result, results, source)
        results[field.key] = result
    return results


async def _continue_serially(
    run: Run, fields: list[FieldPlan], position: int, pending: Any, results: dict[str, Any], source: Any
) -> dict[str, Any]:
    results[fields[position].key] = await pending
    for field in fields[position + 1 :]:
        result = field.execute(run, source, None)
        results[field.key] = await result if is_awaitable(result) else result
    return results
