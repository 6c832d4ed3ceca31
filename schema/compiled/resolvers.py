"""A field's resolver called as Strawberry's wrapper calls it, with what the wrapper finds each time found once.

For a field with a resolver, Strawberry's GraphQL resolver (`GraphQLCoreConverter.from_resolver`) does on
every call: make the Strawberry Info, convert the arguments (looking up each argument's GraphQL name),
run the field extensions, add self/parent/root/info as the resolver asks, call the resolver through
`StrawberryField.get_result`, and, for an async field, await it inside a coroutine of its own. For a
field without field extensions and without exception handlers that may apply to it, all but the Info,
the conversion of the arguments' values and the call itself are the same on every request: `DirectResolvers`
finds them once per field and builds a function that does the rest, in the same order, with the same
results, errors and laziness (an async field's work, argument conversion included, still starts when
its coroutine is awaited). Any other field keeps Strawberry's resolver.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

from graphql import GraphQLField
from strawberry.schema import Schema
from strawberry.schema.compat import is_scalar
from strawberry.types.arguments import convert_argument
from strawberry.types.field import StrawberryField

from schema.compiled.private import field_exception_handlers

DEFINITION = "strawberry-definition"
#: Python types whose argument values Strawberry's `convert_argument` hands back unchanged (scalars).
_UNCONVERTED = (str, int, float, bool)
_RESOLVER_NAMES = {
    True: "GraphQLCoreConverter.from_resolver.<locals>._async_resolver",
    False: "GraphQLCoreConverter.from_resolver.<locals>._resolver",
}


class DirectResolvers:
    """The direct resolvers of one Strawberry schema's fields (None: keep Strawberry's resolver)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.converter = schema.schema_converter

    def of(self, definition: GraphQLField) -> Callable[..., Any] | None:
        field = definition.extensions.get(DEFINITION)
        resolve = definition.resolve
        if not isinstance(field, StrawberryField) or resolve is None:
            return None
        base = field.base_resolver
        if (
            base is None
            or field.extensions
            or field_exception_handlers(self.converter, field)
            or getattr(resolve, "__qualname__", None) != _RESOLVER_NAMES[field.is_async]
            or getattr(resolve, "_is_default", True) is not False
            or not callable(base.wrapped_func)
        ):
            return None
        return _direct(self.schema, field)


def _direct(schema: Schema, field: StrawberryField) -> Callable[..., Any]:
    """`from_resolver`'s `_resolver` (or `_async_resolver`) for a field without extensions or handlers."""
    config = schema.config
    registry = schema.schema_converter.scalar_registry
    info_class = config.info_class
    base = field.base_resolver
    assert base is not None
    wrapped = cast(Callable[..., Any], base.wrapped_func)  # callable: checked by DirectResolvers.of
    arguments = [
        (
            argument.python_name,
            name := config.name_converter.from_argument(argument),
            argument.type,
            (name,),
            argument.type in _UNCONVERTED and is_scalar(argument.type, registry),
        )
        for argument in field.arguments
    ]
    takes_self = base.self_parameter is not None
    parent = base.parent_parameter.name if base.parent_parameter is not None else None
    root = base.root_parameter.name if base.root_parameter is not None else None
    info_name = base.info_parameter.name if base.info_parameter is not None else None

    def call(source: Any, info: Any, raw: dict[str, Any]) -> Any:
        strawberry_info = info_class(_raw_info=info, _field=field)
        kwargs: dict[str, Any] = {}
        for python_name, name, type_, path, unconverted in arguments:
            if name in raw:
                value = raw[name]
                kwargs[python_name] = (
                    value
                    if unconverted
                    else convert_argument(
                        value=value,
                        type_=type_,
                        config=config,
                        scalar_registry=registry,
                        info=strawberry_info,
                        path=path,
                    )
                )
        if parent is not None:
            kwargs[parent] = source
        if root is not None:
            kwargs[root] = source
        if info_name is not None:
            kwargs[info_name] = strawberry_info
        if "info" in kwargs:  # Strawberry hands any keyword named info the Info, last
            del kwargs["info"]
            kwargs["info"] = strawberry_info
        if takes_self:
            return wrapped(source, **kwargs)
        return wrapped(**kwargs)

    if field.is_async:

        async def resolve_async(source: Any, info: Any, **raw: Any) -> Any:
            result = call(source, info, raw)
            if inspect.isawaitable(result):
                return await result
            return result

        return resolve_async

    def resolve(source: Any, info: Any, **raw: Any) -> Any:
        return call(source, info, raw)

    return resolve
