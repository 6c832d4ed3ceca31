"""uvicorn's private names we rely on (read in uvicorn 0.54.0, uvicorn/protocols/http/httptools_impl.py).

server/http_protocol.py replaces `HttpToolsProtocol.data_received` with uvicorn's own body plus a
count of unparsed bytes, so it makes the calls that body makes, including three private methods:

- `_unset_keepalive_if_required()`: cancels the keep-alive timeout once bytes arrive;
- `_should_upgrade()`: whether an `Upgrade` request is a WebSocket upgrade this server accepts;
- `_unsupported_upgrade_warning()`: logs (and explains) an upgrade that is not accepted.

uvicorn offers no public hook into the parser loop.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def unset_keepalive_if_required(protocol: HttpToolsProtocol) -> None:
    protocol._unset_keepalive_if_required()


def should_upgrade(protocol: HttpToolsProtocol) -> bool:
    return protocol._should_upgrade()


def warn_unsupported_upgrade(protocol: HttpToolsProtocol) -> None:
    protocol._unsupported_upgrade_warning()
