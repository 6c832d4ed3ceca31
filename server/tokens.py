"""Where session tokens travel over HTTP: the session cookie and/or the bearer header."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.settings import Settings

COOKIE = "cookie"
BEARER = "bearer"


def read_session_token(request: Request, settings: Settings) -> tuple[str | None, str | None]:
    """The presented token and where it came from: the cookie first, then `Authorization: Bearer`."""
    if settings.uses_cookie:
        token = request.cookies.get(settings.session_cookie_name)
        if token:
            return token, COOKIE
    if settings.uses_bearer:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip(), BEARER
    return None, None


def write_session_token(response: Response, token: str, settings: Settings, remember_me: bool = True) -> None:
    """Hand a new token to the client; `remember_me` makes the cookie outlive the browser session."""
    response.headers["cache-control"] = "no-store"
    if settings.uses_bearer:
        response.headers[settings.auth_token_header] = token
    if settings.uses_cookie:
        response.set_cookie(
            settings.session_cookie_name,
            token,
            max_age=int(settings.session_duration) if remember_me else None,
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
