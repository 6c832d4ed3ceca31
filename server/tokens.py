"""Where session tokens travel over HTTP: the session cookie and/or the bearer header."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from server.settings import Settings

COOKIE = "cookie"
BEARER = "bearer"


def read_session_tokens(request: Request, settings: Settings) -> list[tuple[str, str]]:
    """The presented tokens with where each came from, in the order to try them: cookie, then bearer."""
    found: list[tuple[str, str]] = []
    if settings.uses_cookie:
        token = request.cookies.get(settings.session_cookie_name)
        if token:
            found.append((token, COOKIE))
    if settings.uses_bearer:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
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
