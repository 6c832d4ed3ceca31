"""/metrics (server/metrics.py) on a real server: counters move as requests do; METRICS and METRICS_ADDRESS."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server.settings import Settings, SettingsError
from tests.live_server import free_port, live_server
from tests.metrics_text import ACTIVE_SESSION, LOGIN, graphql, new_session_token, scrape

PASSWORD = "live-server-not-the-default"
LOGOUT = "mutation { logout { success } }"


def test_counters_move_as_requests_do(tmp_path: Path) -> None:
    with live_server(tmp_path, LOGIN_RATE_LIMIT="2/1h") as port:
        base = f"http://127.0.0.1:{port}"
        before = scrape(base)
        token = new_session_token(base)

        for _ in range(3):
            assert graphql(base, ACTIVE_SESSION, token)["data"]["activeSession"] is not None
        assert graphql(base, ACTIVE_SESSION, "unknown-token-" + "x" * 30)["data"]["activeSession"] is None
        assert graphql(base, LOGOUT, token)["data"]["logout"] == {"success": True}
        login = graphql(base, LOGIN, u="superadmin", p=PASSWORD)["data"]["login"]
        wrong = graphql(base, LOGIN, u="superadmin", p="wrong")["data"]["login"]
        limited = httpx.post(
            f"{base}/graphql", json={"query": LOGIN, "variables": {"u": "superadmin", "p": "wrong"}}, timeout=10
        ).json()

        after = scrape(base)
    assert login["__typename"] == "CachedSession"
    assert wrong["__typename"] == "InvalidCredentialsError"
    assert limited["errors"]
    moved = {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}
    assert moved["session_service_session_lookup_seconds_count"] == 5  # the logout's lookup too
    assert moved['session_service_session_lookups_total{outcome="first_tier"}'] == 4
    assert moved['session_service_session_lookups_total{outcome="unknown"}'] == 1
    assert moved['session_service_sessions_created_total{type="anonymous"}'] == 1
    assert moved['session_service_sessions_created_total{type="authenticated"}'] == 1
    assert moved['session_service_sessions_revoked_total{reason="logout"}'] == 1
    assert moved['session_service_login_attempts_total{outcome="success"}'] == 1
    assert moved['session_service_login_attempts_total{outcome="invalid"}'] == 1
    assert moved['session_service_login_attempts_total{outcome="rate_limited"}'] == 1
    assert 'session_service_login_attempts_total{outcome="not_verified"}' not in moved


def test_metrics_off_answers_404(tmp_path: Path) -> None:
    with live_server(tmp_path, METRICS="false") as port:
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404


def test_metrics_address_serves_metrics_on_its_own_port_only(tmp_path: Path) -> None:
    metrics_port = free_port()
    with live_server(tmp_path, METRICS_ADDRESS=f"127.0.0.1:{metrics_port}") as port:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 404
        token = new_session_token(base)
        graphql(base, ACTIVE_SESSION, token)

        scraped = scrape(f"http://127.0.0.1:{metrics_port}")
    assert scraped["session_service_session_lookup_seconds_count"] == 1


def test_metrics_settings_are_read_and_checked() -> None:
    assert (Settings.from_env({}).metrics, Settings.from_env({}).metrics_address) == (True, None)
    assert Settings.from_env({"METRICS": "off"}).metrics is False
    assert Settings.from_env({"METRICS_ADDRESS": "0.0.0.0:9100"}).metrics_address == ("0.0.0.0", 9100)
    assert Settings.from_env({"METRICS_ADDRESS": "[::1]:9100"}).metrics_address == ("::1", 9100)
    for bad in ("9100", "host:", "host:0", "host:70000", "bad host:9100"):
        with pytest.raises(SettingsError) as error:
            Settings.from_env({"METRICS_ADDRESS": bad})
        assert str(error.value) == f"METRICS_ADDRESS={bad!r} is not valid: expected host:port, such as 127.0.0.1:9100"
