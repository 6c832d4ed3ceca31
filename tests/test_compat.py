"""Guard: the libraries' private names that server/compat/ relies on are still there, with the shape it
relies on. A failure names the library function that went missing or changed; re-read it and adapt the
compat module (or drop it, if a public API now does the job)."""

from __future__ import annotations

import inspect

import pytest
from aiocache.backends.redis import RedisBackend
from aiocache.base import BaseCache
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors
from tortoise.context import TortoiseContext
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from models import Session
from server.compat.aiocache_private import ClientClosingRedisCache
from server.compat.strawberry_private import LeanMaskErrors
from server.database import database_connection


def _fail(name: str, what: str) -> None:
    pytest.fail(f"{name} {what}: see server/compat/", pytrace=False)


def require_method(owner: type, attribute: str, parameters: list[str]) -> None:
    """`owner.attribute` is a function whose parameters are named `parameters` (self included)."""
    name = f"{owner.__module__}.{owner.__qualname__}.{attribute}"
    method = getattr(owner, attribute, None)
    if not callable(method):
        _fail(name, "is gone")
    assert callable(method)
    found = list(inspect.signature(method).parameters)
    if found != parameters:
        _fail(name, f"takes {found} now, not {parameters}")


def require_call(owner: type, attribute: str, call: str) -> None:
    """The source of `owner.attribute` still makes the call `call` (the one our override or copy depends on)."""
    name = f"{owner.__module__}.{owner.__qualname__}.{attribute}"
    if call not in inspect.getsource(getattr(owner, attribute)):
        _fail(name, f"no longer calls {call}")


# strawberry (server/compat/strawberry_private.py)


def test_mask_errors_hands_each_result_to_process_result() -> None:
    require_method(MaskErrors, "_process_result", ["self", "result"])
    require_call(MaskErrors, "on_operation", "self._process_result(")
    require_call(MaskErrors, "_process_stream_result", "self._process_result(")


def test_mask_errors_process_errors_masks_what_should_mask_error_picks() -> None:
    require_method(MaskErrors, "_process_errors", ["self", "errors"])
    extension = LeanMaskErrors(should_mask_error=lambda error: error.message == "secret", error_message="masked")
    errors = [GraphQLError("secret"), GraphQLError("public")]

    processed = extension._process_errors(errors)

    if [error.message for error in processed] != ["masked", "public"]:
        _fail("strawberry.extensions.mask_errors.MaskErrors._process_errors", "no longer masks what it should")


# aiocache (server/compat/aiocache_private.py)


def test_aiocache_close_awaits_close() -> None:
    require_method(BaseCache, "_close", ["self", "args", "kwargs"])
    require_method(RedisBackend, "_close", ["self", "args", "_conn", "kwargs"])
    require_call(BaseCache, "close", "self._close(")


class _RecordingRedisCache(ClientClosingRedisCache):
    closed = 0

    async def close_client(self) -> None:
        await super().close_client()  # the client aiocache built, never connected
        self.closed += 1


async def test_redis_cache_close_awaits_close_client() -> None:
    cache = _RecordingRedisCache()

    await cache.close()

    if cache.closed != 1:
        _fail("aiocache.base.BaseCache.close", "no longer reaches _close")


# uvicorn (server/compat/uvicorn_private.py, server/http_protocol.py)


def test_httptools_protocol_private_methods_are_there() -> None:
    for attribute in ("_unset_keepalive_if_required", "_should_upgrade", "_unsupported_upgrade_warning"):
        require_method(HttpToolsProtocol, attribute, ["self"])


def test_httptools_protocol_data_received_is_the_one_we_copied() -> None:
    # server/http_protocol.py's data_received is uvicorn's with a byte count: it must make the same calls.
    for call in (
        "self._unset_keepalive_if_required()",
        "self.parser.feed_data(data)",
        "except httptools.HttpParserError:",
        "self.send_400_response(",
        "except httptools.HttpParserUpgrade:",
        "self._should_upgrade()",
        "self.handle_websocket_upgrade()",
        "self._unsupported_upgrade_warning()",
    ):
        require_call(HttpToolsProtocol, "data_received", call)


def test_httptools_status_line_has_431() -> None:
    if not STATUS_LINE.get(431, b"").startswith(b"HTTP/1.1 431 "):
        _fail("uvicorn.protocols.http.httptools_impl.STATUS_LINE", "has no 431 status line")


# tortoise (public APIs in server/database.py)


async def test_database_connection_is_the_models_connection(db: TortoiseContext) -> None:
    assert database_connection() is Session._meta.db
