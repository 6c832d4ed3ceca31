"""Completing a resolved value by its output type, as graphql-core's Executor.complete_value does
(graphql/execution/executor.py, 3.3.2): non-null, scalars and enums, lists, interfaces and unions.
Objects are completed by their plan (schema/compiled/fields.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLLeafType,
    GraphQLOutputType,
    Undefined,
    is_object_type,
    located_error,
)
from graphql.execution import Executor
from graphql.pyutils import Path, gather_with_cancel, inspect, is_async_iterable, is_iterable
from graphql.type.scalars import serialize_boolean, serialize_id, serialize_string
from strawberry.execution import optimized_is_awaitable as is_awaitable

if TYPE_CHECKING:
    from schema.compiled.fields import FieldPlan, ObjectPlan
    from schema.compiled.run import Run

complete_leaf_value = Executor.complete_leaf_value
#: Lists whose iteration is plain reading (no iterator code runs).
_SEQUENCES = (list, tuple)


class Completer:
    """Executor.complete_value for one output type, the field's (for messages and resolve info).

    This base is also the placeholder a field holds until the compiler gives it its completer."""

    __slots__ = ()

    def complete(self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any) -> Any:
        raise RuntimeError("a field plan ran before the compiler set its completer")


class NonNull(Completer):
    __slots__ = ("inner", "message")

    def __init__(self, inner: Completer, message: str) -> None:
        self.inner = inner
        self.message = message

    def complete(self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        completed = self.inner.complete(run, field, info, path, result)
        if completed is None:
            raise TypeError(self.message)
        return completed


class Leaf(Completer):
    """A scalar or enum, `message` set when it is non-null (NonNull around it, folded in).

    Some answers are known without calling the type's coercion: graphql-core's String and ID give a
    `str` back as it is, and Boolean a `bool` (`passthrough`, when the type keeps graphql-core's
    coercion); ID gives an `int` as `str(value)`; and an enum member's name is remembered once found,
    by the member's identity (members are singletons, and an Enum's `__hash__` is Python code):
    Strawberry's enum types (`wrapped_cls`) look it up by scanning every value, the same answer each
    time. A leaf never reads the path or resolve info."""

    __slots__ = ("ints_as_str", "members", "message", "names", "passthrough", "type")

    def __init__(self, type_: GraphQLLeafType, message: str | None = None) -> None:
        self.type = type_
        self.message = message
        members: type | None = getattr(type_, "wrapped_cls", None)
        # a member that is awaitable or an exception takes the general path, in the Executor's order
        if members is not None and (hasattr(members, "__await__") or issubclass(members, Exception)):
            members = None
        self.members = members
        self.names: dict[int, Any] = {}
        self.passthrough = _passthrough(type_)
        self.ints_as_str = getattr(type_, "coerce_output_value", None) is serialize_id

    def complete(self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any) -> Any:
        return self.value(result)

    def value(self, result: Any) -> Any:
        cls = result.__class__
        if cls is self.passthrough:
            return result
        if cls is int and self.ints_as_str:  # serialize_id: str(int(value))
            return str(result)
        if cls is self.members:
            name = self.names.get(id(result))
            if name is None:
                name = self.names[id(result)] = complete_leaf_value(self.type, result)
            return name
        if isinstance(result, Exception):
            raise result
        if result is None or result is Undefined:
            if self.message is not None:
                raise TypeError(self.message)
            return None
        return complete_leaf_value(self.type, result)


def _passthrough(type_: GraphQLLeafType) -> type | None:
    """The class whose values graphql-core's coercion of `type_` returns unchanged, if any."""
    coerce = getattr(type_, "coerce_output_value", None)
    if coerce is serialize_string or coerce is serialize_id:
        return str
    if coerce is serialize_boolean:
        return bool
    return None


class ListOf(Completer):
    __slots__ = ("item", "item_type", "leaf", "not_iterable")

    def __init__(self, item: Completer, item_type: GraphQLOutputType, not_iterable: str) -> None:
        self.item = item
        self.item_type = item_type
        self.not_iterable = not_iterable
        self.leaf = item if isinstance(item, Leaf) else None

    def complete(self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        if result is None or result is Undefined:
            return None
        leaf = self.leaf
        if leaf is not None and type(result) in _SEQUENCES:
            known = self.known_leaves(leaf, result)
            if known is not None:
                return known
        if type(result) not in _SEQUENCES:  # a list or tuple is iterable, and not asynchronously
            if is_async_iterable(result):
                return self.complete_async(run, field, info, path, result.__aiter__())
            if not is_iterable(result):
                raise GraphQLError(self.not_iterable)
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        iterator = iter(result)
        index = 0
        try:
            for item in iterator:
                if leaf is not None and not is_awaitable(item):
                    try:  # complete_item for a leaf, the item's path made only for an error
                        value = leaf.value(item)
                        if is_awaitable(value):
                            value = run.await_completed(value, self.item_type, field, path.add_key(index, None))
                            awaitable_indices.append(index)
                        completed.append(value)
                    except Exception as raw_error:
                        run.handle_field_error(raw_error, self.item_type, field.nodes, path.add_key(index, None))
                        completed.append(None)
                    index += 1
                    continue
                item_path = path.add_key(index, None)
                if is_awaitable(item):
                    completed.append(run.complete_awaitable(self.item, field, info, item_path, item, self.item_type))
                    awaitable_indices.append(index)
                elif self.complete_item(run, field, info, item_path, item, completed):
                    awaitable_indices.append(index)
                index += 1
        except Exception:
            pending = [completed[index] for index in awaitable_indices]
            try:
                pending.extend(item for item in iterator if is_awaitable(item))
            except Exception:  # as the Executor: the error that escapes is the first one
                pass
            if pending:
                run.settle_in_background(pending)
            raise
        if not awaitable_indices:
            return completed
        return _gather_indices(completed, awaitable_indices)

    @staticmethod
    def known_leaves(leaf: Leaf, result: list[Any] | tuple[Any, ...]) -> list[Any] | None:
        """The completed list when every item's value is known to `leaf` without coercion (see Leaf),
        else None: the list is then completed item by item from its start (reading a list or tuple
        has no effect, so nothing happens twice)."""
        passthrough, members, names = leaf.passthrough, leaf.members, leaf.names
        completed: list[Any] = []
        for item in result:
            cls = item.__class__
            if cls is passthrough:
                completed.append(item)
            elif cls is members and (name := names.get(id(item))) is not None:
                completed.append(name)
            else:
                return None
        return completed

    def complete_item(self, run: Run, field: FieldPlan, info: Any, item_path: Path, item: Any, out: list[Any]) -> bool:
        """Executor.complete_list_item_value: True when the completed item is awaitable."""
        try:
            completed = self.item.complete(run, field, info, item_path, item)
            if is_awaitable(completed):
                out.append(run.await_completed(completed, self.item_type, field, item_path))
                return True
            out.append(completed)
        except Exception as raw_error:
            run.handle_field_error(raw_error, self.item_type, field.nodes, item_path)
            out.append(None)
        return False

    async def complete_async(
        self, run: Run, field: FieldPlan, info: Any, path: Path, iterator: AsyncIterator[Any]
    ) -> list[Any]:
        """Executor.complete_async_iterator_value (no @stream in this schema)."""
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        early_return = getattr(iterator, "aclose", None)
        index = 0
        try:
            while True:
                item_path = path.add_key(index, None)
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    break
                except Exception as raw_error:
                    raise located_error(raw_error, field.nodes, path.as_list()) from raw_error
                if is_awaitable(item):
                    completed.append(run.complete_awaitable(self.item, field, info, item_path, item, self.item_type))
                    awaitable_indices.append(index)
                elif self.complete_item(run, field, info, item_path, item, completed):
                    awaitable_indices.append(index)
                index += 1
        except Exception:
            if early_return is not None:
                try:
                    await early_return()
                except Exception:  # as the Executor
                    pass
            if awaitable_indices:
                run.settle_in_background([completed[index] for index in awaitable_indices])
            raise
        if awaitable_indices:
            return await _gather_indices(completed, awaitable_indices)
        return completed


async def _gather_indices(completed: list[Any], indices: list[int]) -> list[Any]:
    if len(indices) == 1:
        index = indices[0]
        completed[index] = await completed[index]
    else:
        results = await gather_with_cancel(*(completed[index] for index in indices))
        for index, value in zip(indices, results, strict=True):
            completed[index] = value
    return completed


class Abstract(Completer):
    """An interface or union: the runtime type as the Executor resolves it, then that type's plan."""

    __slots__ = ("by_name", "nodes", "resolve_type", "type")

    def __init__(
        self,
        type_: GraphQLAbstractType,
        resolve_type: Callable[..., Any],
        by_name: dict[str, ObjectPlan],
        nodes: list[FieldNode],
    ) -> None:
        self.type = type_
        self.resolve_type = resolve_type
        self.by_name = by_name
        self.nodes = nodes

    def complete(self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        if result is None or result is Undefined:
            return None
        runtime_type = self.resolve_type(result, info, self.type)
        if is_awaitable(runtime_type):
            return self._complete_later(run, field, info, path, result, runtime_type)
        return self.runtime_plan(run, field, runtime_type, result).complete_object(run, field, info, path, result)

    async def _complete_later(
        self, run: Run, field: FieldPlan, info: Any, path: Path, result: Any, runtime_type: Awaitable[Any]
    ) -> Any:
        plan = self.runtime_plan(run, field, await runtime_type, result)
        value = plan.complete_object(run, field, info, path, result)
        return await value if is_awaitable(value) else value

    def runtime_plan(self, run: Run, field: FieldPlan, name: Any, result: Any) -> ObjectPlan:
        """Executor.ensure_valid_runtime_type, with its messages."""
        where = f"for field '{field.parent_type}.{field.name}'"
        if name is None:
            raise GraphQLError(
                f"Abstract type '{self.type}' must resolve to an Object type at runtime {where}."
                f" Either the '{self.type}' type should provide a 'resolve_type' function"
                " or each possible type should provide an 'is_type_of' function.",
                self.nodes,
            )
        if not isinstance(name, str):
            raise GraphQLError(
                f"Abstract type '{self.type}' must resolve to an Object type at runtime {where} with value"
                f" {inspect(result)}, received '{inspect(name)}', which is not a valid Object type name.",
                self.nodes,
            )
        runtime_type = run.schema.get_type(name)
        if runtime_type is None:
            raise GraphQLError(
                f"Abstract type '{self.type}' was resolved to a type '{name}' that does not exist inside the schema.",
                self.nodes,
            )
        if not is_object_type(runtime_type):
            raise GraphQLError(f"Abstract type '{self.type}' was resolved to a non-object type '{name}'.", self.nodes)
        plan = self.by_name.get(name)
        if plan is None or not run.schema.is_sub_type(self.type, runtime_type):
            raise GraphQLError(
                f"Runtime Object type '{runtime_type}' is not a possible type for '{self.type}'.", self.nodes
            )
        return plan
