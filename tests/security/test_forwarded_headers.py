"""FORWARDED_ALLOW_IPS: X-Forwarded-For is believed only from the peers it names, none by default.

The login limiter counts attempts per client address, so a client that could name its own address
in X-Forwarded-For would get a fresh window per guess. Each scenario runs `python -m server` and
logs in from 127.0.0.1 with a forged X-Forwarded-For on every attempt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server.settings import Settings, SettingsError
from tests.live_server import REPO_ROOT, SERVER_SETTINGS, live_server

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { __typename }
}
"""
#: (identifier, the address X-Forwarded-For claims): a new identifier each time, so only the
#: per-address window can limit.
ATTEMPTS = [
    ("user1", "198.51.100.1"),
    ("user2", "198.51.100.2"),
    ("user3", "198.51.100.3"),
    ("user4", "198.51.100.3"),
    ("user5", "198.51.100.3"),
]
INVALID = "InvalidCredentialsError"
LIMITED = "RATE_LIMITED"


def outcome(response: httpx.Response) -> str:
    body = response.json()
    if body.get("errors"):
        reason: str = body["errors"][0]["extensions"]["reason"]
        return reason
    typename: str = body["data"]["login"]["__typename"]
    return typename


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # every attempt is counted against 127.0.0.1, whatever the header says
        ({}, [INVALID, INVALID, LIMITED, LIMITED, LIMITED]),
        # behind a proxy on 127.0.0.1: each attempt counts against the address the proxy names
        ({"FORWARDED_ALLOW_IPS": "127.0.0.1"}, [INVALID, INVALID, INVALID, INVALID, LIMITED]),
    ],
    ids=["default", "trusted-proxy"],
)
def test_forwarded_for_counts_only_from_a_trusted_proxy(
    tmp_path: Path, settings: dict[str, str], expected: list[str]
) -> None:
    with live_server(tmp_path, LOGIN_RATE_LIMIT="2/1m", **settings) as port:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            outcomes = [
                outcome(
                    http.post(
                        "/graphql",
                        json={"query": LOGIN, "variables": {"username": username, "password": "guess"}},
                        headers={"x-forwarded-for": address},
                    )
                )
                for username, address in ATTEMPTS
            ]
    assert outcomes == expected


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("", ()),
        ("127.0.0.1", ("127.0.0.1",)),
        (" 10.0.0.1 , 10.1.0.0/16,::1, 10.0.0.1", ("10.0.0.1", "10.1.0.0/16", "::1")),
        ("*", ("*",)),
    ],
)
def test_forwarded_allow_ips_is_parsed(value: str, parsed: tuple[str, ...]) -> None:
    assert Settings.from_env({"FORWARDED_ALLOW_IPS": value}).forwarded_allow_ips == parsed


def test_no_peer_is_trusted_by_default() -> None:
    assert Settings.from_env({}).forwarded_allow_ips == Settings().forwarded_allow_ips == ()


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.300", "10.0.0.1/8", "*,10.0.0.1"])
def test_a_bad_forwarded_allow_ips_stops_the_server_with_one_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"FORWARDED_ALLOW_IPS": value})
    line = (
        f"FORWARDED_ALLOW_IPS={value!r} is not valid:"
        " expected IP addresses or networks such as 10.0.0.1,10.1.0.0/16, or *"
    )
    assert str(raised.value) == line
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(DATABASE_URL=f"sqlite://{tmp_path / 'sessions.sqlite3'}", FORWARDED_ALLOW_IPS=value)
    command = [sys.executable, "-m", "server"]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (2, f"error: {line}\n")
