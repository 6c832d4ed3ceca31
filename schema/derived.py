"""GraphQL object types declared once, by the domain's frozen dataclasses.

A derived type has one field per dataclass field, in the same order and under the same name
(camelCased by Strawberry): an `int` named `id` or `*_id` becomes an `ID`, a `tuple[X, ...]` a list,
a nested dataclass the type derived from it, and other types stay as they are (`str`, `bool`,
`float`, `datetime`, enums registered with Strawberry). Resolvers return the dataclass instances
themselves: Strawberry reads their attributes, and `is_type_of` lets a union (login's result) and
graphql-core's object check recognise them. So a field added to a dataclass reaches the schema with
no second declaration, and no object is copied on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import strawberry
from graphql import GraphQLResolveInfo

#: domain dataclass -> the Strawberry type derived from it, for nested fields
_DERIVED: dict[type, type] = {}


def object_type(
    domain: type,
    *,
    name: str | None = None,
    exclude: frozenset[str] = frozenset(),
    descriptions: Mapping[str, str] | None = None,
    description: str | None = None,
) -> Any:
    """The Strawberry object type of `domain`, a dataclass, leaving out the fields in `exclude`.

    Nested dataclasses must have been derived first. `descriptions` documents fields by Python name.
    """
    if not (is_dataclass(domain) and isinstance(domain, type)):
        raise TypeError(f"{domain!r} is not a dataclass")
    hints = get_type_hints(domain)
    descriptions = descriptions or {}
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__annotations__": annotations, "__module__": __name__}
    for field in fields(domain):
        if field.name in exclude:
            continue
        annotations[field.name] = _graphql_hint(field.name, hints[field.name])
        if field.name in descriptions:
            namespace[field.name] = strawberry.field(description=descriptions[field.name])

    def is_type_of(cls: type, obj: object, info: GraphQLResolveInfo[Any]) -> bool:
        return isinstance(obj, domain)

    namespace["is_type_of"] = classmethod(is_type_of)
    derived = strawberry.type(type(name or domain.__name__, (), namespace), description=description)
    _DERIVED[domain] = derived
    return derived


def _graphql_hint(name: str, hint: Any) -> Any:
    if hint is int and (name == "id" or name.endswith("_id")):
        return strawberry.ID
    if is_dataclass(hint) and isinstance(hint, type):
        try:
            return _DERIVED[hint]
        except KeyError:
            raise TypeError(f"derive {hint.__name__} before the types that hold it") from None
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[_graphql_hint(name, args[0])]  # type: ignore[misc]
    if origin in (Union, UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return _graphql_hint(name, inner) | None
    return hint
