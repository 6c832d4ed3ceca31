"""The Strawberry ASGI view: builds the typed Context per request, no subscriptions.

Request policy (what another site could make a browser send) is the route's middleware,
server/request_policy.py, which also hands on the content-type with its media type lower-cased for
Strawberry's case-sensitive check. The view only adapts Strawberry and overrides it in three places:
JSON (`decode_json`, and `encode_json` with orjson), a lost database while the context is built
(`run`) and the GraphiQL page, served with its assets from this origin (`render_graphql_ide`,
server/playground/). GraphQL over HTTP (server/graphql_http.py) takes two more touches: `run`
answers every refusal as a JSON error body in the negotiated media type, and `process_result` notes
what a response's errors change in its HTTP answer (400 without `data` for a request error in
application/graphql-response+json, Retry-After).

Executing a single operation (`execute_single`) first tries the compiled path (schema/compiled/):
a validated document runs from its plan, with Strawberry's semantics and errors, and anything the
plan does not cover goes through Strawberry unchanged. The response is built as for any result.
"""

from __future__ import annotations

import json

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from schema.compiled import CompiledPath, allowed_operations
from schema.compiled.lean import LeanPath
from schema.context import Context
from schema.errors import DATABASE_UNAVAILABLE_EXTENSIONS, DATABASE_UNAVAILABLE_MESSAGE, logger, with_default_codes
from server.database import is_database_unavailable
from server.graphql_http import (
    CHANNEL_NOT_FOUND,
    INTERNAL_SERVER_ERROR,
    METHOD_NOT_ALLOWED,
    Refusal,
    error_response,
    finish_response,
    note_errors,
    refusal_response,
)
from server.playground import playground_page
from server.services import Services
from server.services.text import is_storable
from server.settings import Settings
from server.tokens import RequestHeaders

#: The encoding of what orjson refuses: compact as orjson's, non-ASCII characters escaped.
_FALLBACK_ENCODER = json.JSONEncoder(separators=(",", ":"))


class SessionGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: object, settings: Settings) -> None:
        ide = "graphiql" if settings.graphiql else None  # without it, GET text/html is 404
        super().__init__(schema, graphql_ide=ide, subscription_protocols=())  # type: ignore[arg-type]
        self.settings = settings
        self.channel_token_header = settings.channel_token_header.lower().encode("latin-1")
        self.compiled = CompiledPath.for_schema(schema)  # None: every operation runs through Strawberry
        self.lean = LeanPath.for_view(self, self.compiled)  # None: every request through Strawberry's view

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our own GraphiQL page (server/playground/): every asset from this origin, a strict CSP."""
        return playground_page(request, self.settings)

    async def run(  # type: ignore[override]
        self, request: Request | WebSocket, context: Context | UnsetType = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        """Strawberry's, except that losing the database while the context is built (channel and
        session lookups run before any resolver, outside the error masking) is a 503 with a coded
        GraphQL error rather than a 500 with a traceback. A plain request of a compiled operation
        skips Strawberry's view (schema/compiled/lean.py) and gets the same answer.

        GraphQL over HTTP (server/graphql_http.py): Strawberry's HTTPExceptions (and ours) answer a
        JSON error body instead of its plain text, a mutation in a GET the specification's 405; the
        answer takes the negotiated media type and what `process_result` noted about its errors."""
        if context is UNSET and root_value is UNSET and isinstance(request, Request):
            response = await self.respond_plain(request)
            if response is not None:
                return response
        try:
            answer = await super().run(request, context, root_value)  # type: ignore[arg-type]
            return finish_response(request, answer) if isinstance(request, Request) else answer
        except Exception as error:
            if not isinstance(request, Request):
                raise
            return self._refusal(error, request)

    async def respond_plain(self, request: Request) -> Response | None:
        """The answer of the lean path (schema/compiled/lean.py) to a plain request of a compiled
        operation, refusals included; None, with nothing done, for any other request."""
        if self.lean is None:
            return None
        try:
            response = await self.lean.respond(request)
        except Exception as error:
            return self._refusal(error, request)
        # the lean path takes only Accepts answered in application/json
        return None if response is None else finish_response(request, response, negotiated=False)

    def _refusal(self, error: Exception, request: Request) -> Response:
        """The answer to an error that escaped the view: a refusal as a JSON error body, a lost
        database a 503; any other is raised again (a 500, its traceback logged by Starlette)."""
        if isinstance(error, HTTPException):
            return refusal_response(_as_specified(error, request), request.headers.get("accept"))
        if not is_database_unavailable(error):
            raise error
        logger.warning("database unavailable (%s) while building the request context", type(error).__name__)
        return error_response(
            503,
            DATABASE_UNAVAILABLE_MESSAGE,
            INTERNAL_SERVER_ERROR,
            accept=request.headers.get("accept"),
            extensions=DATABASE_UNAVAILABLE_EXTENSIONS,
        )

    def encode_json(self, data: object) -> bytes:
        """orjson's compact UTF-8; what it refuses (a lone surrogate in a string, an integer beyond 64
        bits) the json module's, which escapes such characters: every answer is still JSON."""
        try:
            return orjson.dumps(data)
        except TypeError:
            return _FALLBACK_ENCODER.encode(data).encode()

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
        services: Services = request.scope["state"]["services"]
        headers = RequestHeaders(request, self.channel_token_header)
        channel = await services.channels.get_channel_from_token(headers.channel_token)
        if channel is None:
            message = f"No channel matches the {self.settings.channel_token_header} header"
            raise Refusal(400, message, CHANNEL_NOT_FOUND)
        return await Context.build(request, response, self.settings, services, channel, headers)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """The operation's compiled plan when it has one (schema/compiled/), else Strawberry's execution."""
        if self.compiled is not None:
            allowed = allowed_operations(request_adapter.method, self.allow_queries_via_get)
            result = await self.compiled.execute(request_data, allowed, context, root_value)
            if result is not None:
                return result
        return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        if not result.errors:
            return process_result(result)
        with_default_codes(result.errors)
        response = process_result(result)
        note_errors(request, response)
        return response


def _as_specified(error: HTTPException, request: Request) -> HTTPException:
    """A mutation in a GET is 405 with `Allow: POST` (GraphQL over HTTP), where Strawberry says 400."""
    cause = error.__cause__
    if (
        isinstance(cause, InvalidOperationTypeError)
        and cause.operation_type is OperationType.MUTATION
        and request.method == "GET"
    ):
        return Refusal(405, error.reason, METHOD_NOT_ALLOWED, {"allow": "POST"})
    if error.status_code == 405 and not isinstance(error, Refusal):  # a method other than GET and POST
        return Refusal(405, error.reason, METHOD_NOT_ALLOWED, {"allow": "GET, POST"})
    return error
