"""The compiled executor against Strawberry's, on a small schema made to fail in every way a field can.

Each document runs through `Schema.execute` (which also validates it, as the first use of a
document does) and then through `CompiledPath.execute`; the results, formatted and encoded as the
view encodes them, must be equal. The schema has non-null fields that fail synchronously and
asynchronously (null propagation to the nearest nullable parent, up to `data`), lists of nullable
and non-null items, a resolver that returns an exception, enums, a custom scalar, a union and an
interface resolved by `is_type_of`, a permission class, arguments with defaults, and a concurrent
list of awaitables. It runs once with the project's error masking and once without any.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, NewType

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLRequestData, process_result
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig

from schema.compiled import CachedDocuments, CompiledPath, DocumentCache, allowed_operations
from schema.errors import CodedErrors
from server.services.errors import ForbiddenError

Money = NewType("Money", Decimal)
SCALARS: dict[object, Any] = {
    Money: strawberry.scalar(name="Money", serialize=lambda value: f"{value:.2f}", parse_value=Decimal)
}


@strawberry.enum
class Color(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Cat(Named):
    lives: int


@strawberry.type
class Dog(Named):
    good: bool


Pet = Annotated[Cat | Dog, strawberry.union("Pet")]


@strawberry.type
class Item:
    name: str
    price: Money
    color: Color | None = None

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError(f"broken {self.name}")

    @strawberry.field
    def maybe(self) -> str | None:
        raise ForbiddenError()

    @strawberry.field
    def nothing(self) -> str:
        return None  # type: ignore[return-value]

    @strawberry.field
    def returned_error(self) -> str | None:
        return ValueError("returned, not raised")  # type: ignore[return-value]

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return self.name.upper()

    @strawberry.field
    async def later_broken(self) -> str:
        await asyncio.sleep(0)
        raise RuntimeError("late")

    @strawberry.field
    async def later_maybe(self) -> int | None:
        await asyncio.sleep(0)
        raise ForbiddenError()


ITEMS = [Item(name="a", price=Money(Decimal("1.5")), color=Color.RED), Item(name="b", price=Money(Decimal("20")))]


class Deny(BasePermission):
    message = "Denied here"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ITEMS

    @strawberry.field
    def maybe_items(self) -> list[Item | None] | None:
        return [ITEMS[0], None, ITEMS[1]]

    @strawberry.field
    async def async_items(self) -> list[Item]:
        await asyncio.sleep(0)
        return ITEMS

    @strawberry.field
    def required(self) -> Item:
        return ITEMS[0]

    @strawberry.field
    def colors(self) -> list[Color]:
        return [Color.BLUE, Color.RED, Color.BLUE]

    @strawberry.field
    def pets(self) -> list[Pet]:
        return [Cat(name="tom", lives=9), Dog(name="rex", good=True)]

    @strawberry.field
    def named(self) -> list[Named]:
        return [Dog(name="fido", good=False), Cat(name="kit", lives=3)]

    @strawberry.field(permission_classes=[Deny])
    def secret(self) -> str | None:
        return "hidden"

    @strawberry.field(permission_classes=[Deny])
    def required_secret(self) -> str:
        return "hidden"

    @strawberry.field
    def echo(self, text: str = "default", times: int | None = None, color: Color = Color.RED) -> str:
        return f"{text}x{times}:{color.value}"

    @strawberry.field
    async def slow(self, value: int) -> int:
        await asyncio.sleep(0)
        return value * 2


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def append(self, info: strawberry.Info, value: str) -> list[str]:
        log: list[str] = info.context["log"]
        await asyncio.sleep(0)
        log.append(value)
        return list(log)


def build(masked: bool) -> strawberry.Schema:
    documents = DocumentCache(64)
    extensions: list[Any] = [lambda: CachedDocuments(documents)]
    if masked:
        extensions.append(CodedErrors)
    return strawberry.Schema(
        query=Query, mutation=Mutation, extensions=extensions, config=StrawberryConfig(scalar_map=SCALARS)
    )


DOCUMENTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "plain fields, aliases and typename": (
        "{ __typename items { n: name price color __typename } first: required { name } }",
        None,
    ),
    "non-null error propagates to the nullable list item": ("{ maybeItems { name broken } }", None),
    "non-null error in a non-null list propagates to data": ("{ items { name broken } colors }", None),
    "non-null error through a non-null root field nulls data": ("{ colors required { broken } }", None),
    "null from a non-null field": ("{ maybeItems { nothing } }", None),
    "nullable field errors stay in place": ("{ items { name maybe returnedError } }", None),
    "async fields, concurrent, one failing": ("{ items { later laterMaybe } asyncItems { later } }", None),
    "async non-null failure propagates": ("{ maybeItems { later laterBroken } }", None),
    "several errors at once": ("{ secret a: items { maybe } b: maybeItems { broken } }", None),
    "permission denied on a nullable field": ("{ secret items { name } }", None),
    "permission denied on a non-null root field": ("{ requiredSecret colors }", None),
    "union and interface by runtime type": (
        "{ pets { __typename ... on Cat { lives } ... on Named { name } }"
        " named { __typename name ... on Dog { good } } }",
        None,
    ),
    "named fragments, nested and repeated": (
        "query { items { ...A ...B } } fragment A on Item { name ...B } fragment B on Item { price color }",
        None,
    ),
    "variables, defaults and literals": (
        'query Q($t: String = "dflt", $n: Int, $c: Color = BLUE) { a: echo b: echo(text: $t, times: $n, color: $c)'
        ' c: echo(text: "lit", times: 3) }',
        {"n": 7},
    ),
    "skip and include": (
        "query ($yes: Boolean!, $no: Boolean = false) { items { name @skip(if: $yes) price @include(if: $yes)"
        " color @include(if: $no) ... @include(if: $yes) { later } } colors @skip(if: true) }",
        {"yes": True},
    ),
    "skip and include, other values": (
        "query ($yes: Boolean!, $no: Boolean = false) { items { name @skip(if: $yes) price @include(if: $yes)"
        " color @include(if: $no) ... @include(if: $yes) { later } } colors @skip(if: true) }",
        {"yes": False, "no": True},
    ),
    "merged fields by response key": ("{ items { name } items { price name } }", None),
    "concurrent root awaitables": ("{ a: slow(value: 1) b: slow(value: 2) c: colors }", None),
}


async def both(
    schema: strawberry.Schema, query: str, variables: dict[str, Any] | None, **kwargs: Any
) -> tuple[str, str]:
    """The encoded result of Strawberry's execution and of the compiled path (after a first use)."""
    await schema.execute(query, variable_values=variables, context_value=kwargs.get("context"))
    expected = await schema.execute(query, variable_values=variables, context_value=kwargs.get("context2"))
    compiled = CompiledPath.for_schema(schema)
    assert compiled is not None
    request = GraphQLRequestData(query=query, variables=variables, operation_name=None, extensions=None)
    result = await compiled.execute(request, allowed_operations("POST", True), kwargs.get("context3"), None)
    assert result is not None, "the document has a plan"
    return json.dumps(process_result(expected)), json.dumps(process_result(result))


@pytest.fixture(params=["masked", "plain"])
def schema(request: pytest.FixtureRequest) -> strawberry.Schema:
    return build(request.param == "masked")


@pytest.mark.parametrize("name", DOCUMENTS)
async def test_compiled_result_is_strawberrys(schema: strawberry.Schema, name: str) -> None:
    query, variables = DOCUMENTS[name]
    expected, compiled = await both(schema, query, variables)
    assert compiled == expected


async def test_mutation_fields_run_one_after_the_other(schema: strawberry.Schema) -> None:
    query = 'mutation { a: append(value: "1") b: append(value: "2") c: append(value: "3") }'
    contexts: dict[str, Any] = {"context": {"log": []}, "context2": {"log": []}, "context3": {"log": []}}
    expected, compiled = await both(schema, query, None, **contexts)
    assert compiled == expected
    assert json.loads(compiled)["data"]["c"] == ["1", "2", "3"]


async def test_introspection_is_left_to_strawberry(schema: strawberry.Schema) -> None:
    query = "{ __schema { queryType { name } } }"
    await schema.execute(query)
    compiled = CompiledPath.for_schema(schema)
    assert compiled is not None
    request = GraphQLRequestData(query=query, variables=None, operation_name=None, extensions=None)
    assert await compiled.execute(request, allowed_operations("POST", True), None, None) is None


async def test_an_unvalidated_document_is_left_to_strawberry(schema: strawberry.Schema) -> None:
    compiled = CompiledPath.for_schema(schema)
    assert compiled is not None
    for query in ("{ items { name } }", "{ items { nope } }", "{ items "):
        request = GraphQLRequestData(query=query, variables=None, operation_name=None, extensions=None)
        assert await compiled.execute(request, allowed_operations("POST", True), None, None) is None


async def test_variables_that_do_not_coerce_are_left_to_strawberry(schema: strawberry.Schema) -> None:
    query = "query ($v: Int!) { slow(value: $v) }"
    await schema.execute(query, variable_values={"v": 1})
    compiled = CompiledPath.for_schema(schema)
    assert compiled is not None
    for variables in ({"v": "x"}, {}, None):
        request = GraphQLRequestData(query=query, variables=variables, operation_name=None, extensions=None)
        assert await compiled.execute(request, allowed_operations("POST", True), None, None) is None


async def test_a_mutation_over_get_is_left_to_strawberry(schema: strawberry.Schema) -> None:
    query = 'mutation { append(value: "1") }'
    await schema.execute(query, context_value={"log": []})
    compiled = CompiledPath.for_schema(schema)
    assert compiled is not None
    request = GraphQLRequestData(query=query, variables=None, operation_name=None, extensions=None)
    assert await compiled.execute(request, allowed_operations("GET", True), {"log": []}, None) is None


class Tracing(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        yield


def test_a_schema_with_an_unknown_extension_has_no_compiled_path() -> None:
    documents = DocumentCache(8)
    config = StrawberryConfig(scalar_map=SCALARS)
    schema = strawberry.Schema(query=Query, extensions=[lambda: CachedDocuments(documents), Tracing], config=config)
    assert CompiledPath.for_schema(schema) is None
    assert CompiledPath.for_schema(strawberry.Schema(query=Query, config=config)) is None  # no document cache
