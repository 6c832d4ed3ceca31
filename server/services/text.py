"""Text from clients that is stored or looked up: it must be text every database takes as given.

JSON may carry lone surrogates ("\\ud800"), which UTF-8 cannot encode, so SQLite's and asyncpg's
drivers raise; GraphQL strings and JSON may carry NUL, which PostgreSQL's text types refuse. Either
would surface as an internal error. Passwords are exempt: only their hash is stored.
"""

from __future__ import annotations

from server.services.errors import UserInputError


def is_storable(text: str) -> bool:
    """False when `text` holds a NUL or a lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_storable(text: str, name: str) -> str:
    """`text` itself, or BAD_USER_INPUT naming the argument."""
    if not is_storable(text):
        raise UserInputError(f"{name} must not contain NUL characters or unpaired surrogates")
    return text
