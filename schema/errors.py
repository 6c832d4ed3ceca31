"""What errors may say to a client: our coded errors pass, GraphQL's own become BAD_USER_INPUT,
anything else is masked as INTERNAL_SERVER_ERROR and logged without its stack trace."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from server.services.errors import ServiceError

logger = logging.getLogger("server.errors")

INTERNAL_ERROR_MESSAGE = "Internal server error"


def is_unexpected(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, ServiceError | GraphQLError)


class CodedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_ERROR_MESSAGE)

    def _process_result(self, result: object) -> None:
        # MaskErrors checks a runtime Protocol here, which costs tens of microseconds per request.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        logger.error(
            "unexpected %s in %s",
            type(original).__name__,
            ".".join(str(part) for part in error.path or ()) or "the operation",
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


def with_default_codes(errors: list[GraphQLError]) -> None:
    """Errors GraphQL raised itself (syntax, validation, variable coercion) are the client's input."""
    for error in errors:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
