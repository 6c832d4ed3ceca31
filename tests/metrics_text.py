"""Reading /metrics (the Prometheus text format) and driving a live server in the metrics and worker tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

CREATE_SESSION = "mutation { createAnonymousSession { id token } }"
ACTIVE_SESSION = "{ activeSession { id } }"
LOGIN = "mutation($u:String!,$p:String!){ login(username:$u, password:$p) { __typename } }"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def samples(text: str) -> dict[str, float]:
    """Every sample of a scrape, keyed by its name and labels as written (`name{label="v"}`)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def worker_lookups(text: str) -> dict[str, float]:
    """The per-worker lookup gauge, by pid (one entry without a pid when there is one process)."""
    prefix = "session_service_worker_session_lookups"
    return {
        re.sub(r'^.*pid="(\d+)".*$', r"\1", key) if "pid=" in key else "": value
        for key, value in samples(text).items()
        if key.startswith(prefix)
    }


def scrape(base: str) -> dict[str, float]:
    response = httpx.get(f"{base}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def graphql(base: str, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
    """One request on a connection of its own (so that several workers share the requests)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


def new_session_token(base: str) -> str:
    token: str = graphql(base, CREATE_SESSION)["data"]["createAnonymousSession"]["token"]
    return token
