"""Which other origins' pages may call the API from a browser (CORS_ALLOW_ORIGINS)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from server.graphql_http import BAD_REQUEST, error_response
from server.request_policy import GET_QUERY_HEADER
from server.settings import Settings


class JSONRefusalCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight (400 "Disallowed CORS origin", …) as a JSON error body."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k not in ("content-type", "content-length")}
        message = bytes(response.body).decode()
        accept = request_headers.get("accept")
        return error_response(response.status_code, message, BAD_REQUEST, accept=accept, headers=headers)


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins only; none configured means no CORS headers at all.

    Credentials (the session cookie) are allowed because the origins are explicit: the settings
    refuse a wildcard.
    """
    if not settings.cors_allow_origins:
        return []
    return [
        Middleware(
            JSONRefusalCORSMiddleware,
            allow_origins=list(settings.cors_allow_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "authorization", settings.channel_token_header, GET_QUERY_HEADER],
            expose_headers=[settings.auth_token_header] if settings.uses_bearer else [],
        )
    ]
