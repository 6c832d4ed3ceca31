"""Which other origins' pages may call the API from a browser (CORS_ALLOW_ORIGINS)."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from server.request_policy import GET_QUERY_HEADER
from server.settings import Settings


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins only; none configured means no CORS headers at all.

    Credentials (the session cookie) are allowed because the origins are explicit: the settings
    refuse a wildcard.
    """
    if not settings.cors_allow_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allow_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "authorization", settings.channel_token_header, GET_QUERY_HEADER],
            expose_headers=[settings.auth_token_header] if settings.uses_bearer else [],
        )
    ]
