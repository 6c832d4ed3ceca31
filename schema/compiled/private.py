"""Private names of Strawberry and graphql-core that the compiled path relies on, in one place.

Read in strawberry-graphql 0.341.2 and graphql-core 3.3.2; each is what the general path itself uses,
so that a compiled plan behaves as it does:

- `strawberry.schema.schema._OperationContextAwareGraphQLResolveInfo`: the resolve info Strawberry's
  executor hands to resolvers (graphql-core's fields plus `operation_extensions`, and the plain
  coerced variables instead of graphql-core's VariableValues).
- `strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext`: the executor class Strawberry
  runs; the compiled path is only used while the schema keeps it.
- `BaseSchema._process_errors(errors, execution_context)`: what Strawberry runs on execution errors
  before the extensions mask them.
- `MaskErrors._process_result(result)`: the masking that `MaskErrors.on_operation` applies.
- `_is_default` on a field's resolver: Strawberry marks the resolver of a field without resolver
  or extensions, which reads `field.default_resolver(source, field.python_name)`.
- `graphql.execution.executor.CollectedErrors`: the executor's error list, which drops errors
  below a position already nulled by error propagation.
- `GraphQLCoreConverter._get_field_exception_handlers(field)`: the schema's exception handlers that
  can apply to a field, which its resolver consults on every error (schema/compiled/resolvers.py
  calls a resolver directly only where there are none).
- Starlette's `Request._body`, `_stream_consumed` and `_is_disconnected` (starlette 1.x,
  starlette/requests.py): `read_body` is `Request.body()` without its async generator, leaving the
  request as `body()` leaves it, so that Strawberry's view reads the same bytes after it.
- `AsyncBaseHTTPView._handle_errors(errors, response_data)`: the view's hook for a result with
  errors ("used by the Sentry integration"), which the lean HTTP path calls as `run` does.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from graphql.execution.executor import CollectedErrors
from starlette.requests import ClientDisconnect, Request
from strawberry.extensions import MaskErrors
from strawberry.http.async_base_view import AsyncBaseHTTPView
from strawberry.schema.base import BaseSchema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo as ResolveInfo
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

__all__ = [
    "CollectedErrors",
    "field_exception_handlers",
    "ResolveInfo",
    "StrawberryGraphQLCoreExecutionContext",
    "handle_errors",
    "is_default_resolver",
    "mask_errors",
    "process_errors",
    "read_body",
]


def is_default_resolver(resolve: Any) -> bool:
    """Strawberry's resolver of a field that only reads an attribute (`_get_basic_result`)."""
    return getattr(resolve, "_is_default", False) is True


def handle_errors(
    view: AsyncBaseHTTPView[Any, Any, Any, Any, Any, Any, Any], errors: list[GraphQLError], data: Any
) -> None:
    view._handle_errors(errors, data)


def process_errors(schema: BaseSchema, errors: list[GraphQLError]) -> None:
    schema._process_errors(errors, None)


def mask_errors(extension: MaskErrors, result: object) -> None:
    extension._process_result(result)


def field_exception_handlers(converter: GraphQLCoreConverter, field: StrawberryField) -> tuple[Any, ...]:
    return converter._get_field_exception_handlers(field)


async def read_body(request: Request) -> bytes:
    """`await request.body()`: the messages received until the last, their bodies joined and kept on
    the request; a disconnect raises ClientDisconnect."""
    if hasattr(request, "_body") or request._stream_consumed:
        return await request.body()
    chunks: list[bytes] = []
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                chunks.append(body)
            if not message.get("more_body", False):
                request._stream_consumed = True
                break
        elif message["type"] == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    request._body = b"".join(chunks)
    return request._body
