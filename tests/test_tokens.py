"""The Set-Cookie header of a new session is the one Starlette's `set_cookie` writes, byte for byte;
the headers a request's tokens and channel are read from are found as Starlette's Headers finds them."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from server.services.tokens import new_session_token
from server.settings import Settings
from server.tokens import BEARER, COOKIE, RequestHeaders, read_session_tokens, write_session_token


@pytest.mark.parametrize("remember_me", [True, False])
@pytest.mark.parametrize("secure", [True, False])
@pytest.mark.parametrize(("name", "duration"), [("session", 31536000.0), ("shop.sid", 90.5)])
def test_a_new_sessions_cookie_is_starlettes(remember_me: bool, secure: bool, name: str, duration: float) -> None:
    settings = Settings(session_cookie_name=name, cookie_secure=secure, session_duration=duration)
    token = new_session_token()
    ours, starlettes = Response(), Response()

    write_session_token(ours, token, settings, remember_me)
    starlettes.set_cookie(
        name,
        token,
        max_age=int(duration) if remember_me else None,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )

    assert [v for k, v in ours.raw_headers if k == b"set-cookie"] == [
        v for k, v in starlettes.raw_headers if k == b"set-cookie"
    ]


HEADER_SETS = [
    [],
    [(b"authorization", b"Bearer first"), (b"authorization", b"Bearer second"), (b"channel-token", b"\xe9t\xe9")],
    [(b"cookie", b"session=a; other=b"), (b"cookie", b"session=c"), (b"authorization", b"bearer  tok ")],
    [(b"channel-token", b"one"), (b"channel-token", b"two"), (b"authorization", b"Basic x"), (b"cookie", b"x=1")],
]


@pytest.mark.parametrize("raw", HEADER_SETS)
@pytest.mark.parametrize("channel_header", ["channel-token", "authorization"])
def test_request_headers_are_found_as_starlette_finds_them(raw: list[tuple[bytes, bytes]], channel_header: str) -> None:
    request = Request({"type": "http", "headers": raw})
    starlettes = Headers(raw=raw)

    headers = RequestHeaders(request, channel_header.encode())

    assert headers.channel_token == starlettes.get(channel_header)
    assert headers.authorization == starlettes.get("authorization")
    assert headers.has_cookie == ("cookie" in starlettes)


def test_tokens_come_from_the_cookie_then_the_bearer_header() -> None:
    raw = [(b"cookie", b"session=a; other=b"), (b"cookie", b"session=c"), (b"authorization", b"Bearer  tok ")]
    request = Request({"type": "http", "headers": raw})
    settings = Settings(token_methods=("cookie", "bearer"), session_cookie_name="session")

    tokens = read_session_tokens(request, RequestHeaders(request, b"channel-token"), settings)

    assert tokens == [("c", COOKIE), ("tok", BEARER)]  # Starlette: the last Cookie header's value wins
