"""The Set-Cookie header of a new session is the one Starlette's `set_cookie` writes, byte for byte."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from server.services.tokens import new_session_token
from server.settings import Settings
from server.tokens import write_session_token


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
