"""The Strawberry ASGI view: builds the typed Context per request, no subscriptions.

Before anything is looked up, requests a browser on another site could send with the user's
cookie are refused: POST bodies must be application/json (an HTML form cannot send that), and in
cookie mode a GET that carries the session cookie runs only with the x-requested-with header
(which a cross-site page cannot add without a CORS preflight). GET never runs mutations.
"""

from __future__ import annotations

import json

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from schema.context import Context
from schema.errors import DATABASE_UNAVAILABLE_EXTENSIONS, DATABASE_UNAVAILABLE_MESSAGE, logger, with_default_codes
from server.cors import GET_QUERY_HEADER
from server.database import is_database_unavailable
from server.services import Services
from server.services.text import is_storable
from server.settings import Settings

JSON = "application/json"


def _lower_media_type(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if name != b"content-type":
        return name, value
    media_type, separator, parameters = value.partition(b";")
    return name, media_type.strip().lower() + separator + parameters


class SessionGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: object, settings: Settings) -> None:
        ide = "graphiql" if settings.graphiql else None  # without it, GET text/html is 404
        super().__init__(schema, graphql_ide=ide, subscription_protocols=())  # type: ignore[arg-type]
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.cross_site_refusal(Request(scope))
            if refusal is not None:
                await PlainTextResponse(refusal.reason, status_code=refusal.status_code)(scope, receive, send)
                return
            # Strawberry compares the media type case-sensitively: it gets it lower-cased, parameters kept.
            scope["headers"] = [_lower_media_type(name, value) for name, value in scope["headers"]]
        await super().__call__(scope, receive, send)

    def cross_site_refusal(self, request: Request) -> HTTPException | None:
        if request.method == "POST":
            # Media types are case-insensitive (RFC 9110 8.3.1); parameters such as charset may follow.
            media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != JSON:
                return HTTPException(415, "POST requests must have content-type application/json")
        elif (
            request.method == "GET"
            and "query" in request.query_params
            and self.settings.uses_cookie
            and self.settings.session_cookie_name in request.cookies
            and GET_QUERY_HEADER not in request.headers
        ):
            return HTTPException(400, f"A GET with the session cookie needs the {GET_QUERY_HEADER} header")
        return None

    async def run(  # type: ignore[override]
        self, request: Request | WebSocket, context: Context | UnsetType = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        """Strawberry's, except that losing the database while the context is built (channel and
        session lookups run before any resolver, outside the error masking) is a 503 with a coded
        GraphQL error rather than a 500 with a traceback."""
        try:
            return await super().run(request, context, root_value)  # type: ignore[arg-type]
        except Exception as error:
            if not isinstance(request, Request) or not is_database_unavailable(error):
                raise
            logger.warning("database unavailable (%s) while building the request context", type(error).__name__)
            body = {
                "errors": [{"message": DATABASE_UNAVAILABLE_MESSAGE, "extensions": DATABASE_UNAVAILABLE_EXTENSIONS}]
            }
            return JSONResponse(body, status_code=503)

    def decode_json(self, data: str | bytes) -> object:
        """json.loads, but bytes that are not UTF-8, numbers beyond int()'s digit limit and nesting beyond
        the recursion limit (ValueError and RecursionError, not JSONDecodeError) are a 400 as well, and
        so is JSON that is no object or batch (a bare string or number): Strawberry would answer 500.
        So is an operationName with a lone surrogate, which Strawberry's plain-text 400 for an unknown
        operation would echo and fail to encode."""
        try:
            decoded = json.loads(data)
        except (ValueError, RecursionError):
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if not isinstance(decoded, dict | list):
            raise HTTPException(400, "Expected a JSON object")
        operation_name = decoded.get("operationName") if isinstance(decoded, dict) else None
        if isinstance(operation_name, str) and not is_storable(operation_name):
            raise HTTPException(400, "operationName must not contain NUL characters or unpaired surrogates")
        return decoded

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        assert isinstance(request, Request) and isinstance(response, Response)
        services: Services = request.state.services
        channel_token = request.headers.get(self.settings.channel_token_header)
        channel = await services.channels.get_channel_from_token(channel_token)
        if channel is None:
            raise HTTPException(400, f"No channel matches the {self.settings.channel_token_header} header")
        return await Context.build(request, response, self.settings, services, channel)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if result.errors:
            with_default_codes(result.errors)
        return process_result(result)
