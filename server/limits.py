"""A cap on request bodies, counted as the bytes arrive: Content-Length is never trusted."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.graphql_http import PAYLOAD_TOO_LARGE, error_body, response_media_type

STATUS_TOO_LARGE = 413


class BodySizeLimit:
    """Refuse with 413 a body above `max_bytes` without reading past the limit.

    A declared Content-Length above the limit is refused before any byte of the body is read;
    otherwise the body is read chunk by chunk and refused as soon as the count passes the limit,
    whatever Content-Length said. A body within the limit is handed to the app unchanged. The refusal
    is a GraphQL-over-HTTP error body (server/graphql_http.py) with the code PAYLOAD_TOO_LARGE.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        await self.app(scope, replay_body(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = error_body(f"Request body is larger than {self.max_bytes} bytes", PAYLOAD_TOO_LARGE)
        media_type = response_media_type(Headers(scope=scope).get("accept"))
        await send(
            {
                "type": "http.response.start",
                "status": STATUS_TOO_LARGE,
                "headers": [
                    (b"content-type", media_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # The rest of the body is not read: the connection cannot carry another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the protocol server rejects it; counting still applies
    return None


def replay_body(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the client's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
