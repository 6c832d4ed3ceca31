"""From a validated document to a plan, read off the schema Strawberry built (no copy of it).

Fields are grouped by response key with graphql-core's own `collect_fields`/`collect_subfields`,
which apply @skip/@include for the request's variables: a plan holds for the values of the
variables that those directives use, and the document keeps one plan per combination it sees
(at most MAX_VARIANTS). Each field is resolved as Strawberry's resolver for it would: a field
that Strawberry marks as a plain attribute read is read with the field's `default_resolver` and
Python name; any other field calls the resolver Strawberry built (permission extensions, argument
conversion and all), or, for a field without extensions, the same resolver without the wrapping
that does nothing for it (schema/compiled/resolvers.py). What a plan cannot do raises Unsupported,
and the operation falls back.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
    visit,
)
from graphql.execution import default_field_resolver, default_type_resolver
from graphql.execution.collect_fields import FieldDetails, FragmentDetails, collect_fields, collect_subfields
from graphql.execution.values import VariableValues
from graphql.language import Visitor
from strawberry.types.field import StrawberryField

from schema.compiled.completers import Abstract, Completer, Leaf, ListOf, NonNull
from schema.compiled.fields import BASIC, RESOLVER, TYPENAME, FieldPlan, ObjectPlan
from schema.compiled.private import is_default_resolver
from schema.compiled.resolvers import DirectResolvers

#: Plans kept per document for different @skip/@include variable values; past this, fall back.
MAX_VARIANTS = 16
#: Fields that answer introspection: left to Strawberry.
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
DEFINITION = "strawberry-definition"


class Unsupported(Exception):
    """The operation uses something the compiled path leaves to Strawberry."""


class OperationPlan:
    """An operation compiled for one set of @skip/@include values."""

    __slots__ = ("fields", "fragments", "operation", "root_type", "serially")

    def __init__(
        self,
        operation: OperationDefinitionNode,
        root_type: GraphQLObjectType,
        fragments: dict[str, FragmentDefinitionNode],
        fields: list[FieldPlan],
    ) -> None:
        self.operation = operation
        self.root_type = root_type
        self.fragments = fragments
        self.fields = fields
        self.serially = operation.operation == OperationType.MUTATION


def condition_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables that @skip or @include read anywhere in the document, in a fixed order."""
    names: set[str] = set()

    class Conditions(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value in ("skip", "include"):
                for argument in node.arguments or ():
                    names.update(_variables(argument))

    visit(document, Conditions())
    return tuple(sorted(names))


def _variables(argument: ArgumentNode) -> set[str]:
    value = argument.value
    return {value.name.value} if isinstance(value, VariableNode) else set()


class Compiler:
    """Compiles one operation of a document for the given variable values."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        resolvers: DirectResolvers | None = None,
    ) -> None:
        self.schema = schema
        self.resolvers = resolvers
        self.operation = operation
        self.fragment_definitions = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        if any(definition.variable_definitions for definition in self.fragment_definitions.values()):
            raise Unsupported("fragment variables")
        self.fragments = {name: FragmentDetails(definition) for name, definition in self.fragment_definitions.items()}
        if operation.directives:  # e.g. @experimental_disableErrorPropagation
            raise Unsupported("operation directives")
        if operation.operation not in (OperationType.QUERY, OperationType.MUTATION):
            raise Unsupported("subscription")

    def compile(self, variables: VariableValues) -> OperationPlan:
        root_type = self.schema.get_root_type(self.operation.operation)
        if root_type is None:
            raise Unsupported("no root type")
        collected = collect_fields(self.schema, self.fragments, variables, root_type, self.operation)
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise Unsupported("defer")
        fields = [
            self.field(variables, root_type, key, details) for key, details in collected.grouped_field_set.items()
        ]
        return OperationPlan(self.operation, root_type, self.fragment_definitions, fields)

    def field(
        self, variables: VariableValues, parent: GraphQLObjectType, key: str, details: list[FieldDetails]
    ) -> FieldPlan:
        name = details[0].node.name.value
        if name in INTROSPECTION_FIELDS:
            raise Unsupported("introspection")
        definition = self.schema.get_field(parent, name)
        if definition is None:
            raise Unsupported(f"unknown field {parent.name}.{name}")
        if any(detail.defer_usage is not None or detail.fragment_variable_values is not None for detail in details):
            raise Unsupported("defer or fragment variables")
        nodes = [detail.node for detail in details]
        strawberry_field = definition.extensions.get(DEFINITION)
        resolve: Any
        if name == "__typename":
            kind, resolve, python_name = TYPENAME, None, name
        elif (
            definition.resolve is not None
            and is_default_resolver(definition.resolve)
            and isinstance(strawberry_field, StrawberryField)
        ):
            kind, resolve, python_name = BASIC, strawberry_field.default_resolver, strawberry_field.python_name
        else:
            direct = self.resolvers.of(definition) if self.resolvers is not None else None
            kind, resolve, python_name = RESOLVER, direct or definition.resolve or default_field_resolver, name
        completer, needs_info = self.completer(variables, definition.type, parent, name, details)
        plan = FieldPlan(key, parent, definition, nodes, kind, resolve, python_name, kind == RESOLVER or needs_info)
        plan.completer = completer
        if kind == BASIC and isinstance(completer, Leaf) and not plan.needs_info:
            plan.leaf = completer
        return plan

    def completer(
        self,
        variables: VariableValues,
        type_: GraphQLOutputType,
        parent: GraphQLObjectType,
        name: str,
        details: list[FieldDetails],
    ) -> tuple[Completer, bool]:
        """The completion of `type_` for field `parent.name`, and whether it reads the resolve info."""
        if isinstance(type_, GraphQLNonNull):
            message = f"Cannot return null for non-nullable field {parent}.{name}."
            if is_leaf_type(type_.of_type):
                return Leaf(type_.of_type, message), False
            inner, needs_info = self.completer(variables, type_.of_type, parent, name, details)
            return NonNull(inner, message), needs_info
        if isinstance(type_, GraphQLList):
            item, needs_info = self.completer(variables, type_.of_type, parent, name, details)
            message = f"Expected Iterable, but did not find one for field '{parent}.{name}'."
            return ListOf(item, type_.of_type, message), needs_info
        if is_leaf_type(type_):
            return Leaf(type_), False
        nodes = [detail.node for detail in details]
        if is_abstract_type(type_):
            abstract: GraphQLAbstractType = type_
            by_name = {
                possible.name: self.object(variables, possible, details)
                for possible in self.schema.get_possible_types(abstract)
            }
            return Abstract(abstract, abstract.resolve_type or default_type_resolver, by_name, nodes), True
        if is_object_type(type_):
            plan = self.object(variables, type_, details)
            return plan, plan.is_type_of is not None
        raise Unsupported(f"output type {type_}")

    def object(self, variables: VariableValues, type_: GraphQLObjectType, details: list[FieldDetails]) -> ObjectPlan:
        plan = ObjectPlan(type_, [detail.node for detail in details])
        collected = collect_subfields(self.schema, self.fragments, variables, self.operation, type_, details)
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise Unsupported("defer")
        plan.fields = [
            self.field(variables, type_, key, sub_details) for key, sub_details in collected.grouped_field_set.items()
        ]
        return plan
