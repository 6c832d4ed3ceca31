"""What errors may say to a client: our coded errors pass, GraphQL's own become BAD_USER_INPUT,
anything else is masked as INTERNAL_SERVER_ERROR and logged without its stack trace. A lost
database connection is masked too, with `reason: DATABASE_UNAVAILABLE` so clients can retry."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError

from server.compat.strawberry_private import LeanMaskErrors
from server.database import is_database_unavailable
from server.services.errors import ServiceError

logger = logging.getLogger("server.errors")

INTERNAL_ERROR_MESSAGE = "Internal server error"
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable, try again later"
#: The contract's codes are binding, so an outage is INTERNAL_SERVER_ERROR with a stable reason.
DATABASE_UNAVAILABLE_EXTENSIONS = {"code": "INTERNAL_SERVER_ERROR", "reason": "DATABASE_UNAVAILABLE"}


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, ServiceError | GraphQLError)


class CodedErrors(LeanMaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_ERROR_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        where = ".".join(str(part) for part in error.path or ()) or "the operation"
        masked = super().anonymise_error(error)
        if original is not None and is_database_unavailable(original):
            logger.warning("database unavailable (%s) in %s", type(original).__name__, where)
            masked.message = DATABASE_UNAVAILABLE_MESSAGE
            masked.extensions = dict(DATABASE_UNAVAILABLE_EXTENSIONS)
            return masked
        logger.error("unexpected %s in %s", type(original).__name__, where)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


def with_default_codes(errors: list[GraphQLError]) -> None:
    """Errors GraphQL raised itself (syntax, validation, variable coercion) are the client's input."""
    for error in errors:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
