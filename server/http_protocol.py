"""uvicorn's httptools protocol with a cap on the request line and headers (httptools has none).

Without it a client can stream one endless header and the parser keeps every byte (50 MB per
connection was accepted). Two counts enforce the cap:

- while a request head is incomplete, the bytes received since the parser last made progress (a
  complete head, a piece of body, a complete request) are counted as they arrive, and the head is
  refused as soon as the count passes the limit; a read in which the parser made progress is not
  counted past that point, so a head that begins inside a read after another request (pipelining)
  may run over by that read (at most 256 KiB) before it is cut. The same count bounds chunk-size
  lines and trailers, which are no body either;
- a complete head is measured as `METHOD target HTTP/1.1`, `name: value` lines and line ends, so a
  whole head that came in one read is held to the limit exactly.

A refused head is answered 431 with a GraphQL-over-HTTP error body and the connection closed; when the
connection is still busy with a previous request, or the overrun is in the body's framing, it is closed
without an answer.

The connection's writes go through `CoalescedWrites` (server/coalesced_writes.py), so that a response's
head and body, written one after the other, leave in one system call.
"""

from __future__ import annotations

import asyncio

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from server.coalesced_writes import CoalescedWrites
from server.compat.uvicorn_private import should_upgrade, unset_keepalive_if_required, warn_unsupported_upgrade
from server.graphql_http import BAD_REQUEST, JSON, REQUEST_HEADER_FIELDS_TOO_LARGE, error_body

STATUS_TOO_LARGE = 431
STATUS_BAD_REQUEST = 400
_CRLF = 2


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


class HeadLimitedProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a request line and headers over `max_head_bytes` with 431."""

    max_head_bytes = 16384
    #: bytes received since the parser last made progress
    _unparsed_bytes = 0
    #: the parser made progress during the current read
    _progressed = False
    #: between a complete head and the end of its request
    _in_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescedWrites(transport, self.loop))

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the count; a HeadTooLarge raised by a callback becomes a 431."""
        unset_keepalive_if_required(self)
        self._progressed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, HeadTooLarge):
                self._refuse()
            else:
                self._invalid_request()
            return
        except httptools.HttpParserError:
            self._invalid_request()
            return
        except httptools.HttpParserUpgrade:
            if should_upgrade(self):
                self.handle_websocket_upgrade()
            else:
                warn_unsupported_upgrade(self)
            return
        if not self._progressed:
            self._unparsed_bytes += len(data)
        if self._unparsed_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse()

    def on_headers_complete(self) -> None:
        size = _head_size(self.parser.get_method(), self.url, self.parser.get_http_version(), self.headers)
        if size > self.max_head_bytes:
            raise HeadTooLarge
        self._made_progress()
        self._in_body = True
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._made_progress()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._made_progress()
        self._in_body = False
        super().on_message_complete()

    def _made_progress(self) -> None:
        self._progressed = True
        self._unparsed_bytes = 0

    def _invalid_request(self) -> None:
        """uvicorn's 400 for a request the parser rejects, with a JSON body like every other refusal."""
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self._answer_and_close(STATUS_BAD_REQUEST, message, BAD_REQUEST)

    def _refuse(self) -> None:
        busy = self.cycle is not None and not self.cycle.response_complete
        if self._in_body or busy:  # the answer on this connection belongs to a request under way
            self.logger.warning("Request framing over %d bytes: connection closed.", self.max_head_bytes)
            self.transport.close()
            return
        self.logger.warning("Request line and headers over %d bytes: answered 431.", self.max_head_bytes)
        message = f"Request line and headers are larger than {self.max_head_bytes} bytes"
        self._answer_and_close(STATUS_TOO_LARGE, message, REQUEST_HEADER_FIELDS_TOO_LARGE)

    def _answer_and_close(self, status: int, message: str, code: str) -> None:
        """A GraphQL-over-HTTP error body (server/graphql_http.py) in application/json: the head, and
        with it any Accept, is incomplete or unreadable. The connection cannot carry another request."""
        body = error_body(message, code)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + JSON.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def _head_size(method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> int:
    """Bytes of the head as `METHOD target HTTP/version`, `name: value` lines, CRLF line ends, and the empty line."""
    request_line = len(method) + 1 + len(target) + len(" HTTP/") + len(version) + _CRLF
    return request_line + sum(len(name) + 2 + len(value) + _CRLF for name, value in headers) + _CRLF


def head_limited_protocol(max_head_bytes: int) -> type[HeadLimitedProtocol]:
    """The protocol class for `uvicorn.run(http=...)`, which instantiates it per connection."""

    class Limited(HeadLimitedProtocol):
        pass

    Limited.max_head_bytes = max_head_bytes
    return Limited


class WorkerProtocol(HeadLimitedProtocol):
    """The protocol of a worker process (WEB_CONCURRENCY > 1). uvicorn hands its configuration to each
    worker by pickling it, so the protocol is named by import path (WORKER_PROTOCOL) rather than built by
    `head_limited_protocol`; the worker's app factory sets the limit from its settings with
    `limit_worker_protocol` before the first connection."""


WORKER_PROTOCOL = f"{__name__}:WorkerProtocol"


def limit_worker_protocol(max_head_bytes: int) -> None:
    WorkerProtocol.max_head_bytes = max_head_bytes
