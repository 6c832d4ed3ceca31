"""Identifiers as the services take them: their normal form (models/identifiers.py), or BAD_USER_INPUT."""

from __future__ import annotations

from models.identifiers import (
    MAX_IDENTIFIER_LENGTH,
    IdentifierConflictError,
    fold_identifier,
    is_invisible,
    normalised_identifiers,
)
from server.services.errors import UserInputError

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "IdentifierConflictError",
    "fold_identifier",
    "is_invisible",
    "lookup_identifier",
    "normalise_identifier",
    "normalised_identifiers",
]


def normalise_identifier(text: str) -> str:
    """The identifier `text` names, in its normal form; BAD_USER_INPUT when it holds an invisible
    character, or is empty or longer than MAX_IDENTIFIER_LENGTH once normalised."""
    if any(is_invisible(character) for character in text.strip()):
        raise UserInputError("identifier must not contain invisible, control or unassigned characters")
    identifier = fold_identifier(text)
    if not 0 < len(identifier) <= MAX_IDENTIFIER_LENGTH:
        raise UserInputError(f"identifier must be 1 to {MAX_IDENTIFIER_LENGTH} characters")
    return identifier


def lookup_identifier(text: str) -> str:
    """The identifier a login names: its normal form, or "" (which names no user) when no user could
    have chosen it. Never raises, so a refused identifier fails exactly as an unknown one does."""
    try:
        return normalise_identifier(text)
    except UserInputError:
        return ""
