"""The schema documents itself: every type, field, argument, input field and enum value has a
description, as GraphiQL's documentation pane reads it through introspection."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_client_schema,
    get_introspection_query,
    graphql_sync,
    is_introspection_type,
)

from schema.schema import build_schema


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Where a description is missing or blank: `Type`, `Type.field`, `Type.field(argument:)`,
    `Input.field`, `Enum.VALUE`, `@directive`, `@directive(argument:)`. GraphQL's own introspection
    types are left out; its scalars and directives are checked like ours (graphql-core describes them)."""
    missing: list[str] = []

    def check(path: str, description: str | None) -> None:
        if not (description or "").strip():
            missing.append(path)

    for name, named in sorted(schema.type_map.items()):
        if is_introspection_type(named):
            continue
        check(name, named.description)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                check(f"{name}.{field_name}", field.description)
                for argument_name, argument in field.args.items():
                    check(f"{name}.{field_name}({argument_name}:)", argument.description)
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                check(f"{name}.{field_name}", input_field.description)
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                check(f"{name}.{value_name}", value.description)
    for directive in schema.directives:
        check(f"@{directive.name}", directive.description)
        for argument_name, argument in directive.args.items():
            check(f"@{directive.name}({argument_name}:)", argument.description)
    return missing


def test_every_type_field_argument_and_enum_value_of_the_schema_is_described() -> None:
    missing = undescribed(build_schema()._schema)
    assert missing == [], "without a description: " + ", ".join(missing)


def test_the_descriptions_reach_a_client_through_introspection() -> None:
    """What GraphiQL does: introspect, rebuild the schema, show its descriptions."""
    result = graphql_sync(build_schema()._schema, get_introspection_query(descriptions=True))
    assert result.errors is None and result.data is not None
    client_schema = build_client_schema(result.data)  # type: ignore[arg-type]

    assert undescribed(client_schema) == []
    login = client_schema.mutation_type.fields["login"]  # type: ignore[union-attr]
    assert login.args["rememberMe"].description
    assert client_schema.get_type("Permission").values["Owner"].description  # type: ignore[union-attr]


@strawberry.enum(description="Described.")
class Colour(Enum):
    RED = strawberry.enum_value("red", description="Described.")
    BLUE = "blue"


@strawberry.input(description="Described.")
class Filter:
    colour: Colour = strawberry.field(description="Described.")
    limit: int


@strawberry.type
class PartlyDescribed:
    @strawberry.field(description="Described.")
    def count(self, filter: Annotated[Filter, strawberry.argument(description="Described.")], skip: int = 0) -> int:
        return 0

    @strawberry.field
    def total(self) -> int:
        return 0


def test_the_walk_names_each_missing_description() -> None:
    """The check above fails for a missing description of any kind, naming where it is missing."""
    schema = strawberry.Schema(query=PartlyDescribed)

    assert undescribed(schema._schema) == [
        "Colour.BLUE",
        "Filter.limit",
        "PartlyDescribed",
        "PartlyDescribed.count(skip:)",
        "PartlyDescribed.total",
    ]
