"""What the GraphQL route refuses before Strawberry sees a request: what another site could send.

A browser on another site can send the user's cookie with a form POST or a plain GET. So POST bodies
must be application/json (an HTML form cannot send that), and in cookie mode a GET query that carries
the session cookie runs only with the x-requested-with header (which a cross-site page cannot add
without a CORS preflight). GET never runs mutations: Strawberry refuses them itself. Refusals are
GraphQL-over-HTTP error bodies (server/graphql_http.py).
"""

from __future__ import annotations

from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.graphql_http import BAD_REQUEST, UNSUPPORTED_MEDIA_TYPE, error_response
from server.settings import Settings

#: The non-simple request header that lets a cookie-carrying GET run a query.
GET_QUERY_HEADER = "x-requested-with"
JSON = "application/json"
JSON_BYTES = JSON.encode()
STATUS_UNSUPPORTED_MEDIA_TYPE = 415
STATUS_BAD_REQUEST = 400


class RequestPolicy:
    """Refuse a POST that is not application/json (415) and, when `session_cookie` is set, a GET query
    carrying that cookie without the GET_QUERY_HEADER header (400); hand anything else on, with the
    media type of its content-type lower-cased (parameters kept): Strawberry compares it case-sensitively.
    """

    def __init__(self, app: ASGIApp, session_cookie: str | None) -> None:
        self.app = app
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if _media_type_to_lower(scope):
            scope = {**scope, "headers": [_lower_media_type(name, value) for name, value in scope["headers"]]}
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        method = scope["method"]
        if method == "POST":
            if first_content_type(scope) == JSON_BYTES:  # the common case, without decoding
                return None
            headers = Headers(scope=scope)
            # Media types are case-insensitive (RFC 9110 8.3.1); parameters such as charset may follow.
            if headers.get("content-type", "").partition(";")[0].strip().lower() != JSON:
                return error_response(
                    STATUS_UNSUPPORTED_MEDIA_TYPE,
                    "POST requests must have content-type application/json",
                    UNSUPPORTED_MEDIA_TYPE,
                    accept=headers.get("accept"),
                )
        elif method == "GET" and self.session_cookie is not None:
            headers = Headers(scope=scope)
            if (
                "query" in QueryParams(scope["query_string"])
                and self.session_cookie in cookie_parser(headers.get("cookie", ""))
                and GET_QUERY_HEADER not in headers
            ):
                return error_response(
                    STATUS_BAD_REQUEST,
                    f"A GET with the session cookie needs the {GET_QUERY_HEADER} header",
                    BAD_REQUEST,
                    accept=headers.get("accept"),
                )
        return None


def request_policy_middleware(settings: Settings) -> Middleware:
    """The policy for the GraphQL route: the GET rule applies in cookie mode only."""
    return Middleware(RequestPolicy, session_cookie=settings.session_cookie_name if settings.uses_cookie else None)


def first_content_type(scope: Scope) -> bytes | None:
    """The first content-type header's value, as `Headers.get` would find it (ASGI names are lower case)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value  # type: ignore[no-any-return]
    return None


def _media_type_to_lower(scope: Scope) -> bool:
    """Whether a content-type header would change in `_lower_media_type` (else the scope is handed on as it is)."""
    for name, value in scope["headers"]:
        if name == b"content-type" and _lower_media_type(name, value)[1] != value:
            return True
    return False


def _lower_media_type(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name != b"content-type":
        return name, value
    media_type, separator, parameters = value.partition(b";")
    return name, media_type.strip().lower() + separator + parameters
