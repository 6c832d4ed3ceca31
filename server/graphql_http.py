"""GraphQL over HTTP: the response media type a client gets, and the body of every refusal.

Every answer a client can get is JSON. A request refused before or instead of GraphQL execution
(malformed JSON, a wrong content type, an oversized body, an unknown channel, a mutation in a GET, …)
answers the specification's error shape with the HTTP status that says why:

    {"errors": [{"message": "...", "extensions": {"code": "..."}}]}

The media type is negotiated on Accept (`response_media_type`): application/graphql-response+json when
the client lists it at least as high as application/json, application/json otherwise: without an
Accept header, for `*/*` and `application/*`, and for an Accept that names neither (the specification
lets a server disregard such a header instead of answering 406).

A GraphQL response is finished here too: the view's `process_result` calls `note_errors`, and its
`run` calls `finish_response` on the answer, so that with application/graphql-response+json a request
error (parse, validation, variable coercion) answers 400 without `data`, and an error carrying
`retryAfter` (a rate-limited login) sets Retry-After. A field error keeps 200 in either media type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

from cross_web import HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLHTTPResponse

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"

#: extensions.code of the transport-level refusals (the GraphQL errors' codes are in schema/errors.py)
BAD_REQUEST = "BAD_REQUEST"
CHANNEL_NOT_FOUND = "CHANNEL_NOT_FOUND"
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
REQUEST_HEADER_FIELDS_TOO_LARGE = "REQUEST_HEADER_FIELDS_TOO_LARGE"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
CODES = {
    400: BAD_REQUEST,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    431: REQUEST_HEADER_FIELDS_TOO_LARGE,
    500: INTERNAL_SERVER_ERROR,
}
INTERNAL_ERROR_MESSAGE = "Internal server error"  # the text schema/errors.py masks errors with


class Refusal(HTTPException):
    """An HTTPException (the kind Strawberry's view raises) with its own code and response headers."""

    def __init__(self, status_code: int, reason: str, code: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.headers = dict(headers or {})


def code_for(status_code: int) -> str:
    """The code of a refusal with this status: CODES, else the status's own name (e.g. NOT_ACCEPTABLE)."""
    if status_code in CODES:
        return CODES[status_code]
    try:
        return HTTPStatus(status_code).name
    except ValueError:
        return BAD_REQUEST if status_code < 500 else INTERNAL_SERVER_ERROR


def response_media_type(accept: str | None) -> str:
    """GRAPHQL_RESPONSE when Accept lists it by name with a quality above 0 and at least that of
    application/json (or of the wildcard that would cover application/json); JSON otherwise."""
    if not accept or "graphql-response" not in accept.lower():  # the common case, without parsing
        return JSON
    graphql_response = 0.0
    json_quality = {JSON: -1.0, "application/*": -1.0, "*/*": -1.0}  # -1: not listed
    for item in accept.lower().split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        quality = _quality(parameters)
        if media_range == GRAPHQL_RESPONSE:
            graphql_response = max(graphql_response, quality)
        elif media_range in json_quality:
            json_quality[media_range] = max(json_quality[media_range], quality)
    # the most specific range that covers application/json decides its quality (RFC 9110 12.5.1)
    json_listed = next((q for q in json_quality.values() if q >= 0), 0.0)
    return GRAPHQL_RESPONSE if graphql_response > 0 and graphql_response >= json_listed else JSON


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def error_body(message: str, code: str, extensions: Mapping[str, object] | None = None) -> bytes:
    """The specification's error shape with one error; `extensions` adds to (or replaces) the code."""
    error = {"message": message, "extensions": {"code": code, **(extensions or {})}}
    return json.dumps({"errors": [error]}, separators=(",", ":")).encode()


def error_response(
    status_code: int,
    message: str,
    code: str,
    *,
    accept: str | None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, object] | None = None,
) -> Response:
    body = error_body(message, code, extensions)
    return Response(body, status_code, headers=headers, media_type=response_media_type(accept))


def refusal_response(error: HTTPException, accept: str | None) -> Response:
    """The answer to an HTTPException raised by Strawberry's view or ours (a Refusal keeps its code)."""
    if isinstance(error, Refusal):
        return error_response(error.status_code, error.reason, error.code, accept=accept, headers=error.headers)
    return error_response(error.status_code, error.reason, code_for(error.status_code), accept=accept)


def is_request_error(response: Mapping[str, object]) -> bool:
    """The GraphQL response of a request error (a document that does not parse or validate, variables
    that do not coerce): `data` is null, every error lacks a path and none is a masked server failure.
    Strawberry's view answers the other request errors (no query, an unknown operation) as HTTPExceptions."""
    errors = response.get("errors")
    if response.get("data") is not None or not isinstance(errors, list) or not errors:
        return False
    return all("path" not in error and _code(error) != INTERNAL_SERVER_ERROR for error in errors)


def retry_after(response: Mapping[str, object]) -> int | None:
    """The longest `retryAfter` (whole seconds) among the errors, as a rate-limited login reports it."""
    errors = response.get("errors")
    seconds = [
        value
        for error in (errors if isinstance(errors, list) else ())
        if isinstance(value := (error.get("extensions") or {}).get("retryAfter"), int)
    ]
    return max(seconds, default=None)


def _code(error: Mapping[str, object]) -> object:
    extensions = error.get("extensions")
    return extensions.get("code") if isinstance(extensions, Mapping) else None


#: The scope key of a request's ResponseNotes.
NOTES = "session_service.graphql_response_notes"


@dataclass(frozen=True, slots=True)
class ResponseNotes:
    """What a GraphQL response's errors change in its HTTP answer (`note_errors`, `finish_response`)."""

    status_code: int | None
    headers: Mapping[str, str]


def note_errors(request: Request, response: GraphQLHTTPResponse) -> None:
    """For a response with errors: with application/graphql-response+json a request error loses `data`
    and will answer 400; an error that says when to retry will set Retry-After. Kept in the request's
    scope until `finish_response`, because the hook that sees the errors does not build the answer (not
    on `request.state`: that is the lifespan's state, which an ASGI server need not copy per request)."""
    status_code = None
    if response_media_type(request.headers.get("accept")) == GRAPHQL_RESPONSE and is_request_error(response):
        response.pop("data", None)
        status_code = 400
    seconds = retry_after(response)
    headers = {} if seconds is None else {"retry-after": str(seconds)}
    if status_code is not None or headers:
        request.scope[NOTES] = ResponseNotes(status_code, headers)


def finish_response(request: Request, response: Response, *, negotiated: bool = True) -> Response:
    """The answer in the negotiated media type, with what `note_errors` recorded. `negotiated=False`
    for an answer known to be application/json (the Accept was absent, `*/*` or application/json)."""
    if (
        negotiated
        and response.headers.get("content-type") == JSON  # a GraphQL response, not the GraphiQL page
        and response_media_type(request.headers.get("accept")) == GRAPHQL_RESPONSE
    ):
        response.headers["content-type"] = GRAPHQL_RESPONSE
    notes: ResponseNotes | None = request.scope.get(NOTES)
    if notes is not None:
        if notes.status_code is not None:
            response.status_code = notes.status_code
        response.headers.update(notes.headers)
    return response


async def starlette_http_exception(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (404 for an unknown path, 405 with Allow for another method) as JSON."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code in (204, 304):  # no body allowed
        return Response(status_code=error.status_code, headers=error.headers)
    accept = request.headers.get("accept")
    code = code_for(error.status_code)
    return error_response(error.status_code, error.detail, code, accept=accept, headers=error.headers)


async def server_error(request: Request, error: Exception) -> Response:
    """An unhandled exception: a coded 500 without details (Starlette logs the traceback)."""
    return error_response(500, INTERNAL_ERROR_MESSAGE, INTERNAL_SERVER_ERROR, accept=request.headers.get("accept"))


#: For `Starlette(exception_handlers=...)`: every answer from routing and from a failure is JSON too.
EXCEPTION_HANDLERS = {StarletteHTTPException: starlette_http_exception, Exception: server_error}
