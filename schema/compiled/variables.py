"""A request's variables coerced as graphql-core's `get_variable_values` coerces them, the common case
prepared once per operation.

Most operations declare only String or ID variables without defaults, and most requests give them
strings. graphql-core then hands each string back unchanged (`coerce_string`, `coerce_id`) after
re-deriving every variable's signature from the document. `OperationVariables` derives the signatures
once; a request whose every value is a `str` gets the same VariableValues directly, and any other
request (a missing or non-string value, another type, a default) goes through `get_variable_values`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from graphql import GraphQLError, GraphQLNonNull, GraphQLScalarType, GraphQLSchema, Undefined, VariableDefinitionNode
from graphql.execution import get_variable_values
from graphql.execution.get_variable_signature import GraphQLVariableSignature, get_variable_signature
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.type.scalars import coerce_id, coerce_string

#: graphql-core's default bound on variable coercion errors, as Strawberry leaves it.
MAX_COERCION_ERRORS = 50
#: Input coercions that return a `str` value as it is.
_KEEPS_STR = (coerce_string, coerce_id)


class OperationVariables:
    """The variable definitions of one operation; `coerce` answers as `get_variable_values` would."""

    __slots__ = ("definitions", "schema", "strings")

    def __init__(self, schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]) -> None:
        self.schema = schema
        self.definitions = definitions
        #: the signatures when every variable is a String or ID without default, else None
        self.strings = _string_signatures(schema, definitions)

    def coerce(self, inputs: dict[str, Any]) -> VariableValues | list[GraphQLError]:
        strings = self.strings
        if strings is not None and type(inputs) is dict:
            sources: dict[str, VariableValueSource] = {}
            coerced: dict[str, Any] = {}
            for signature in strings:
                name = signature.name
                value = inputs.get(name, Undefined)
                if value.__class__ is not str:
                    break
                sources[name] = VariableValueSource(signature, value)
                coerced[name] = value
            else:
                return VariableValues(sources, coerced)
        return get_variable_values(self.schema, self.definitions, inputs, max_errors=MAX_COERCION_ERRORS)


def _string_signatures(
    schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
) -> tuple[GraphQLVariableSignature, ...] | None:
    signatures = []
    for definition in definitions:
        signature = get_variable_signature(schema, definition)
        if isinstance(signature, GraphQLError) or signature.default is not None:
            return None
        type_ = signature.type
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if not isinstance(type_, GraphQLScalarType) or type_.coerce_input_value not in _KEEPS_STR:
            return None
        signatures.append(signature)
    return tuple(signatures)
