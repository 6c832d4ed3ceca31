"""GraphQL IDs are strings; ours name integer primary keys."""

from __future__ import annotations

from collections.abc import Sequence

from server.services.errors import EntityNotFoundError, UserInputError

MAX_DATABASE_ID = 2**31 - 1


def parse_id(value: str, entity: str) -> int:
    """The integer id in `value`: BAD_USER_INPUT when malformed, ENTITY_NOT_FOUND when out of range."""
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 40:
        raise UserInputError(f"'{value[:40]}' is not a valid {entity} id")
    number = int(text)
    if not 0 < number <= MAX_DATABASE_ID:
        raise EntityNotFoundError(entity, text)
    return number


def parse_ids(values: Sequence[str], entity: str) -> list[int]:
    return [parse_id(value, entity) for value in values]
