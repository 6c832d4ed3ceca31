"""Errors the services raise for expected failures; each carries its public GraphQL code."""

from __future__ import annotations

import math


class ServiceError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # graphql-core copies `extensions` of the original error into the GraphQL error.
        self.extensions: dict[str, object] = {"code": self.code}


class ForbiddenError(ServiceError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "You are not currently authorized to perform this action") -> None:
        super().__init__(message)


class EntityNotFoundError(ServiceError):
    code = "ENTITY_NOT_FOUND"

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"No {entity} with the id '{entity_id}' could be found")


class UserInputError(ServiceError):
    code = "BAD_USER_INPUT"


class RateLimitedError(ForbiddenError):
    """Too many login attempts: FORBIDDEN, with `reason` RATE_LIMITED and `retryAfter` in whole seconds."""

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"Too many login attempts: try again in {seconds} seconds")
        self.retry_after = seconds
        self.extensions = {"code": self.code, "reason": "RATE_LIMITED", "retryAfter": seconds}


class SessionEndedError(ForbiddenError):
    """The request's session ended while the request ran (logged out, merged into a login):
    FORBIDDEN with `reason` SESSION_ENDED, so a client retries with the token it holds now."""

    def __init__(self) -> None:
        super().__init__("This session has ended: retry with the current session token")
        self.extensions = {"code": self.code, "reason": "SESSION_ENDED"}


class FreshAuthenticationRequiredError(ForbiddenError):
    """The operation demands a password proof younger than SESSION_FRESH_AGE (login or reauthenticate):
    FORBIDDEN with `reason` FRESH_AUTHENTICATION_REQUIRED, so a client asks for the password and retries."""

    def __init__(self) -> None:
        super().__init__("This operation needs a recent proof of your password: reauthenticate, then retry")
        self.extensions = {"code": self.code, "reason": "FRESH_AUTHENTICATION_REQUIRED"}


class StaleCredentialsError(ServiceError):
    """The credential a login proved changed (or its user was deleted) before the session was created."""

    def __init__(self) -> None:
        super().__init__("the credentials changed during the login")
