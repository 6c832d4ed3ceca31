"""The service clock of an app under test, moved by the test: the SessionService's clock (sessions start,
slide, end and are proved by it) and the cache guard's, which judges cached copies by it."""

from __future__ import annotations

import time

import pytest

from server.cache import build_session_cache
from server.services.session import SessionService
from tests.services.support import FakeClock


def install_service_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock, starting at the real time, for every app created after this call (as tests/schema/twin.py does)."""
    clock = FakeClock(round(time.time()))
    assert SessionService.__init__.__defaults__ is not None and len(SessionService.__init__.__defaults__) == 1
    monkeypatch.setattr(SessionService.__init__, "__defaults__", (clock,))
    assert build_session_cache.__kwdefaults__ is not None and "clock" in build_session_cache.__kwdefaults__
    monkeypatch.setitem(build_session_cache.__kwdefaults__, "clock", clock)
    return clock
