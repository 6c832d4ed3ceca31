"""The state of one execution of a plan, and what graphql-core's Executor does around a field:
its resolve info, its errors (null propagation through non-null types, errors dropped below a
nulled position), and the settling of awaitables. See schema/compiled/fields.py for the plan itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLNonNull,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    located_error,
)
from graphql.execution.values import VariableValues
from graphql.pyutils import Path, gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.execution import optimized_is_awaitable as is_awaitable

from schema.compiled.private import CollectedErrors, ResolveInfo

if TYPE_CHECKING:
    from schema.compiled.completers import Completer
    from schema.compiled.fields import FieldPlan


class Run:
    """One execution of a plan: the request's values and the errors collected so far."""

    __slots__ = (
        "background",
        "context",
        "coerced",
        "errors",
        "fragments",
        "helpers",
        "operation",
        "operation_extensions",
        "root_value",
        "schema",
        "variables",
    )

    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
        context: Any,
        root_value: Any,
        operation_extensions: dict[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments
        self.variables = variables
        self.coerced = variables.coerced
        self.context = context
        self.root_value = root_value
        self.operation_extensions = operation_extensions
        self.errors = CollectedErrors()
        self.background: set[Awaitable[Any]] = set()
        self.helpers = GraphQLResolveInfoHelpers(gather=self.gather, track=self.track)

    def info(self, field: FieldPlan, path: Path) -> ResolveInfo:
        return ResolveInfo(
            field.name,
            field.nodes,
            field.return_type,
            field.parent_type,
            path,
            self.schema,
            self.fragments,
            self.root_value,
            self.operation,
            self.coerced,
            self.context,
            is_awaitable,
            None,
            self.helpers,
            self.operation_extensions,  # type: ignore[arg-type]
        )

    def handle_field_error(
        self, raw_error: Exception, return_type: GraphQLOutputType, nodes: list[FieldNode], path: Path
    ) -> None:
        error = located_error(raw_error, nodes, path.as_list())
        if isinstance(return_type, GraphQLNonNull):
            raise error
        self.errors.add(error, path)

    def settle_in_background(self, awaitables: list[Awaitable[Any]]) -> None:
        future = asyncio.gather(*awaitables, return_exceptions=True)
        self.background.add(future)
        future.add_done_callback(self.background.discard)

    def track(self, values: Sequence[Any]) -> None:
        awaitables = [value for value in values if is_awaitable(value)]
        if awaitables:
            self.settle_in_background(awaitables)

    def gather(self, values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        return gather_with_cancel(*values)

    async def complete_awaitable(
        self, completer: Completer, field: FieldPlan, info: Any, path: Path, result: Any, return_type: Any
    ) -> Any:
        """Executor.complete_awaitable_value (also complete_awaitable_list_item_value)."""
        try:
            completed = completer.complete(self, field, info, path, await result)
            if is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field.nodes, path)
            completed = None
        return completed

    async def await_completed(self, completed: Awaitable[Any], return_type: Any, field: FieldPlan, path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field.nodes, path)
            return None
