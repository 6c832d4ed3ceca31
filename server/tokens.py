"""Where session tokens travel over HTTP: the session cookie and/or the bearer header."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from server.settings import Settings

COOKIE = "cookie"
BEARER = "bearer"


class RequestHeaders:
    """What the request context reads of a request's headers, found in one pass over them: the first
    value of the channel token header and of Authorization (as `Headers.get` finds them), and whether
    any Cookie header came (cookies are then read as Starlette reads them, from every such header)."""

    __slots__ = ("authorization", "channel_token", "has_cookie")

    def __init__(self, request: Request, channel_token_header: bytes) -> None:
        channel_token = authorization = None
        has_cookie = False
        for name, value in request.scope["headers"]:
            if name == channel_token_header and channel_token is None:
                channel_token = value
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"cookie":
                has_cookie = True
        self.channel_token: str | None = None if channel_token is None else channel_token.decode("latin-1")
        self.authorization: str | None = None if authorization is None else authorization.decode("latin-1")
        self.has_cookie = has_cookie


def read_session_tokens(request: Request, headers: RequestHeaders, settings: Settings) -> list[tuple[str, str]]:
    """The presented tokens with where each came from, in the order to try them: cookie, then bearer."""
    found: list[tuple[str, str]] = []
    if settings.uses_cookie and headers.has_cookie:
        token = request.cookies.get(settings.session_cookie_name)
        if token:
            found.append((token, COOKIE))
    if settings.uses_bearer and headers.authorization:
        scheme, _, credentials = headers.authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            found.append((credentials.strip(), BEARER))
    return found


def write_session_token(response: Response, token: str, settings: Settings, remember_me: bool = True) -> None:
    """Hand a new token to the client; `remember_me` makes the cookie outlive the browser session."""
    response.headers["cache-control"] = "no-store"
    if settings.uses_bearer:
        response.headers[settings.auth_token_header] = token
    if settings.uses_cookie:
        max_age = int(settings.session_duration) if remember_me else None
        # The header Starlette's set_cookie writes (tests/test_tokens.py compares them), without building a
        # SimpleCookie per response: a token this service issued needs no quoting.
        name, attributes = _new_cookie(settings.session_cookie_name, settings.cookie_secure, max_age)
        response.raw_headers.append((b"set-cookie", name + token.encode("ascii") + attributes))


@functools.lru_cache(maxsize=8)
def _new_cookie(name: str, secure: bool, max_age: int | None) -> tuple[bytes, bytes]:
    """What comes before and after the token in a new session's Set-Cookie header."""
    attributes = "; HttpOnly" + (f"; Max-Age={max_age}" if max_age is not None else "") + "; Path=/; SameSite=lax"
    return f"{name}=".encode("latin-1"), (attributes + ("; Secure" if secure else "")).encode("latin-1")


def refresh_session_cookie(response: Response, token: str, settings: Settings, expires: datetime) -> None:
    """Send the session cookie again with a lifetime that lasts until `expires` (its expiry slid)."""
    response.headers["cache-control"] = "no-store"
    response.set_cookie(
        settings.session_cookie_name,
        token,
        max_age=max(0, int((expires - datetime.now(UTC)).total_seconds())),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    if settings.uses_cookie:
        response.delete_cookie(
            settings.session_cookie_name, path="/", httponly=True, samesite="lax", secure=settings.cookie_secure
        )
