"""Object types derived from domain dataclasses: one declaration, the instances returned as they are."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import pytest
import strawberry

from models.enums import Permission
from schema.derived import object_type
from schema.schema import build_schema
from server.cached_session import CachedSession


@dataclass(frozen=True, slots=True)
class Part:
    id: int
    permissions: tuple[Permission, ...]


@dataclass(frozen=True, slots=True)
class Whole:
    id: int
    owner_id: int | None
    count: int
    made: datetime
    parts: tuple[Part, ...]
    best: Part | None
    secret: str = ""


if TYPE_CHECKING:  # as in schema/types.py: resolvers return the dataclasses
    WholeType = Whole
else:
    PartType = object_type(Part)
    WholeType = object_type(
        Whole, name="WholeThing", exclude=frozenset({"secret"}), descriptions={"count": "How many."}
    )


@strawberry.type
class Other:
    note: str


def _schema(root: Whole) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def whole(self) -> WholeType:
            return root

        @strawberry.field
        def either(self) -> Annotated[WholeType | Other, strawberry.union("Either")]:
            return root

    return strawberry.Schema(query=Query)


WHOLE = Whole(
    id=7,
    owner_id=None,
    count=3,
    made=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    parts=(Part(1, (Permission.Authenticated,)), Part(2, ())),
    best=Part(3, (Permission.SuperAdmin,)),
    secret="never shown",
)


def test_the_sdl_follows_the_dataclass_field_by_field() -> None:
    sdl = str(_schema(WHOLE))

    assert (
        'type WholeThing {\n  id: ID!\n  ownerId: ID\n\n  """How many."""\n  count: Int!\n  made: DateTime!\n'
        "  parts: [Part!]!\n  best: Part\n}"
    ) in sdl
    assert "type Part {\n  id: ID!\n  permissions: [Permission!]!\n}" in sdl
    assert "secret" not in sdl


def test_a_dataclass_instance_is_served_as_it_is_and_resolves_in_a_union() -> None:
    result = _schema(WHOLE).execute_sync(
        "{ whole { id ownerId count made parts { id permissions } best { id } }"
        " either { __typename ... on WholeThing { id } } }"
    )

    assert result.errors is None
    assert result.data == {
        "whole": {
            "id": "7",
            "ownerId": None,
            "count": 3,
            "made": "2030-01-02T03:04:05+00:00",
            "parts": [{"id": "1", "permissions": ["Authenticated"]}, {"id": "2", "permissions": []}],
            "best": {"id": "3"},
        },
        "either": {"__typename": "WholeThing", "id": "7"},
    }


def test_an_object_of_another_class_is_refused_rather_than_read() -> None:
    result = _schema(Other(note="x")).execute_sync("{ whole { id } }")  # type: ignore[arg-type]

    assert result.errors is not None
    assert "Expected value of type 'WholeThing'" in result.errors[0].message


@dataclass(frozen=True)
class Inner:
    id: int


@dataclass(frozen=True)
class Outer:
    inner: Inner


def test_a_nested_dataclass_must_be_derived_first() -> None:
    with pytest.raises(TypeError, match="derive Inner before"):
        object_type(Outer)


def test_the_contract_cached_session_is_the_domain_dataclass_less_its_cache_key_and_activity_due() -> None:
    schema = build_schema()
    graphql_fields = schema._schema.type_map["CachedSession"].fields  # type: ignore[attr-defined]
    names = [field.name for field in fields(CachedSession) if field.name not in ("cache_key", "activity_due")]

    assert [schema.config.name_converter.apply_naming_config(name) for name in names] == list(graphql_fields)
