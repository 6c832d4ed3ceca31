"""The lean HTTP path: a plain request whose operation already has a plan, answered without
Strawberry's per-request view machinery.

Strawberry's view spends on every request about as much as a compiled plan takes to execute:
request adapters, content-type parsing through the `email` package, runtime Protocol checks on
the result, the GraphQL IDE and streaming checks. For a request that needs none of that, this
path reads the body, finds the plan, and then calls the view's own hooks in the order Strawberry's
`run` calls them (`get_root_value`, `get_sub_response`, `get_context`, `process_result`,
`_handle_errors`, `create_response`), so the status, headers (cookies and tokens written by
resolvers through the context's response), error masking and body are the ones Strawberry sends.

What it takes (anything else is answered by Strawberry's view, as if this path did not exist):
a POST with a JSON body (media type `application/json`) or a GET with a `query` parameter; an
Accept header absent, `*/*` or `application/json`; a single operation (no batch) whose `query` is
a string, `variables` and `extensions` objects or absent, `operationName` a string or absent; and
an operation the compiled path answers (`CompiledPath.prepare`). Nothing observable happens
before that decision: reading the body caches it on the request for Strawberry, and decoding it
or coercing the variables changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.types.graphql import OperationType

from schema.compiled.executor import CompiledPath, allowed_operations
from schema.compiled.private import handle_errors, read_body

#: Accept header values answered here: any other is negotiated by Strawberry's view.
PLAIN_ACCEPTS = frozenset({b"*/*", b"application/json"})
JSON_MEDIA_TYPE = b"application/json"
_REQUEST_FIELDS = ("query", "variables", "operationName", "extensions")
_JSON_HEADER = (b"content-type", b"application/json")
_OK = 200


class LeanPath:
    """Answers plain requests of compiled operations for `view`; `respond` gives None to mean Strawberry."""

    def __init__(self, view: GraphQL[Any, Any], compiled: CompiledPath) -> None:
        self.view = view
        self.compiled = compiled
        #: what each method may run, by method and the view's `allow_queries_via_get`, found once
        self.allowed_by_method = {
            (method, via_get): frozenset(allowed_operations(method, via_get))
            for method in ("GET", "POST")
            for via_get in (False, True)
        }
        # Strawberry's own hooks are replaced by equivalents without their overhead; a view that
        # overrides one keeps its own.
        view_class = type(view)
        self.stock_root_value = view_class.get_root_value is GraphQL.get_root_value  # None
        self.stock_sub_response = view_class.get_sub_response is GraphQL.get_sub_response
        self.stock_response = view_class.create_response is GraphQL.create_response

    @classmethod
    def for_view(cls, view: GraphQL[Any, Any], compiled: CompiledPath | None) -> LeanPath | None:
        """None when the view streams (subscription protocols) or uploads files: every request is Strawberry's."""
        if compiled is None or view.protocols or view.multipart_uploads_enabled:
            return None
        return cls(view, compiled)

    async def respond(self, request: Request) -> Response | None:
        """The answer to a plain request of a compiled operation; None, with nothing done, for any other."""
        data = await self.request_data(request)
        if data is None:
            return None
        view = self.view
        allowed = self.allowed(request.scope["method"])
        prepared = self.compiled.prepare(data, allowed)
        if prepared is None:
            return None
        plan, variables = prepared
        root_value = None if self.stock_root_value else await view.get_root_value(request)
        sub_response = _sub_response() if self.stock_sub_response else await view.get_sub_response(request)
        context = await view.get_context(request, response=sub_response)
        result = await self.compiled.run(plan, variables, data.extensions, context, root_value)
        response_data = await view.process_result(request, result)
        if result.errors:
            handle_errors(view, result.errors, response_data)
        if self.stock_response:
            body = view.encode_json(response_data)
            return _json_response(body if isinstance(body, bytes) else body.encode(), sub_response)
        return view.create_response(response_data, sub_response)

    def allowed(self, method: str) -> Collection[OperationType]:
        via_get = self.view.allow_queries_via_get
        allowed = self.allowed_by_method.get((method, via_get))
        return allowed_operations(method, via_get) if allowed is None else allowed

    async def request_data(self, request: Request) -> GraphQLRequestData | None:
        """The request's operation when the request is plain (see the module docstring), else None."""
        scope = request.scope
        method = scope["method"]
        content_type = accept = None
        for name, value in scope["headers"]:
            if name == b"accept":
                if accept is not None:
                    return None
                accept = value
            elif name == b"content-type":
                content_type = value
        if accept is not None and accept not in PLAIN_ACCEPTS:
            return None
        if method == "POST":
            if content_type is None or content_type.partition(b";")[0].strip() != JSON_MEDIA_TYPE:
                return None
            decoded = self.decode(await read_body(request))
        elif method == "GET":
            decoded = self.query_params(request)
        else:
            return None
        if not isinstance(decoded, dict):
            return None
        query, variables, operation_name, extensions = (decoded.get(key) for key in _REQUEST_FIELDS)
        if (
            not isinstance(query, str)
            or not (variables is None or isinstance(variables, dict))
            or not (extensions is None or isinstance(extensions, dict))
            or not (operation_name is None or isinstance(operation_name, str))
        ):
            return None
        return GraphQLRequestData(query, variables, operation_name, extensions, "http")

    def decode(self, text: str | bytes) -> object:
        """The view's JSON decoding; None for what it refuses (Strawberry's view then answers the error)."""
        try:
            return self.view.decode_json(text)
        except Exception:
            return None

    def query_params(self, request: Request) -> dict[str, Any] | None:
        """Strawberry's `parse_query_params`: the last value of each parameter, `variables` and
        `extensions` decoded; None where Strawberry would refuse them or render the IDE."""
        params: dict[str, Any] = dict(request.query_params)
        if "query" not in params:
            return None
        for key in ("variables", "extensions"):
            if key in params:
                if not params[key]:
                    return None
                params[key] = self.decode(params[key])
                if params[key] is None:
                    return None
        return params


def _sub_response() -> Response:
    """`GraphQL.get_sub_response`: a response without body, status or headers, for resolvers to write to."""
    response = Response.__new__(Response)
    response.status_code = None  # type: ignore[assignment]
    response.background = None
    response.body = b""
    response.raw_headers = []
    response.headers  # made once, as Strawberry makes it (by deleting content-length)
    return response


def _json_response(body: bytes, sub_response: Response) -> Response:
    """`GraphQL.create_response` for a single result: 200 (or the status a resolver set), JSON, then
    the headers resolvers wrote, and their background task."""
    response = Response.__new__(Response)
    response.status_code = sub_response.status_code or _OK
    response.background = sub_response.background
    response.body = body
    response.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_HEADER, *sub_response.headers.raw]
    return response
