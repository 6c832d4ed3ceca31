"""GraphQL over HTTP: media types negotiated on Accept, every refusal a JSON error body, and the
GraphQL Foundation's conformance audit (graphql-http's `auditServer`) against `python -m server`.

The audit runs in node at the versions pinned in tests/conformance/package-lock.json, installed once
from the npm registry with `npm ci` into a cache folder (GRAPHQL_HTTP_AUDIT_CACHE, default
~/.cache/session-service/graphql-http-audit/<hash of the lock>). Without node and npm the test skips
with the reason, except in CI (REQUIRE_SERVICES=1 or CI set), where that is a failure. Its report
goes to test-artifacts/graphql-http-audit.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.graphql_http import EXCEPTION_HANDLERS, GRAPHQL_RESPONSE, JSON, response_media_type
from tests.conftest import ClientFactory, SettingsFactory
from tests.graphql import GraphQLClient, refusal
from tests.live_server import REPO_ROOT, live_server

AUDIT_PROJECT = REPO_ROOT / "tests" / "conformance"
ARTIFACTS = REPO_ROOT / "test-artifacts"
NPM_TIMEOUT = 300
AUDIT_TIMEOUT = 120

TYPENAME = {"query": "{ __typename }"}
ACCEPT_GRAPHQL_RESPONSE = {"accept": GRAPHQL_RESPONSE}
VARIABLE_IS_NULL = "Variable '$id' has invalid value: Expected value of non-null type 'ID!' not to be None."
SET_CHANNEL = "mutation Set($id: ID!) { setActiveChannel(channelId: $id) { activeChannelId } }"
#: serializeSession needs ReadSession: without a session it is a field error beside activeChannel's data.
PARTLY_FORBIDDEN = '{ serializeSession(token: "x") { token } activeChannel { code } }'


# --- Content negotiation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("", JSON),
        ("application/json", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html", JSON),  # names neither: disregarded, as the specification allows
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("Application/GraphQL-Response+JSON", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),  # a tie goes to the specification's type
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE};q=0.5, */*", JSON),
        (f"{GRAPHQL_RESPONSE};q=0.5, text/html", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0", JSON),
        (f"{GRAPHQL_RESPONSE};q=oops", JSON),
    ],
)
def test_the_response_media_type_follows_accept(accept: str | None, media_type: str) -> None:
    assert response_media_type(accept) == media_type


async def test_graphql_response_json_is_offered(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json=TYPENAME, headers=ACCEPT_GRAPHQL_RESPONSE)
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        200,
        GRAPHQL_RESPONSE,
        {"data": {"__typename": "Query"}},
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": "{"}, "Syntax Error: Expected Name, found <EOF>."),
        ({"query": "{ nope }"}, "Cannot query field 'nope' on type 'Query'."),
        ({"query": SET_CHANNEL, "variables": {"id": None}}, VARIABLE_IS_NULL),
    ],
    ids=["parse", "validation", "variable-coercion"],
)
async def test_request_errors_depend_on_the_media_type(
    client: GraphQLClient, body: dict[str, Any], message: str
) -> None:
    specified = await client.http.post("/graphql", json=body, headers=ACCEPT_GRAPHQL_RESPONSE)
    legacy = await client.http.post("/graphql", json=body, headers={"accept": JSON})
    unnamed = await client.http.post("/graphql", json=body)

    # application/graphql-response+json: 400 and no data entry
    assert (specified.status_code, specified.headers["content-type"]) == (400, GRAPHQL_RESPONSE)
    assert "data" not in specified.json()
    assert [(e["message"], e["extensions"]) for e in specified.json()["errors"]] == [
        (message, {"code": "BAD_USER_INPUT"})
    ]
    # application/json, asked for or assumed: 200 with data null, as before
    for response in (legacy, unnamed):
        assert (response.status_code, response.headers["content-type"]) == (200, JSON)
        assert response.json()["data"] is None
        assert response.json()["errors"] == specified.json()["errors"]


async def test_a_field_error_keeps_200_and_data_in_either_media_type(client: GraphQLClient) -> None:
    for accept in (GRAPHQL_RESPONSE, JSON):
        response = await client.http.post("/graphql", json={"query": PARTLY_FORBIDDEN}, headers={"accept": accept})
        body = response.json()
        assert (response.status_code, response.headers["content-type"]) == (200, accept)
        assert body["data"] == {"serializeSession": None, "activeChannel": {"code": "__default_channel__"}}
        assert [error["extensions"]["code"] for error in body["errors"]] == ["FORBIDDEN"]


async def test_the_playground_is_html_whatever_else_accept_lists(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers={"accept": f"text/html, {GRAPHQL_RESPONSE}"})
    assert (response.status_code, response.headers["content-type"]) == (200, "text/html; charset=utf-8")


# --- Refusals -------------------------------------------------------------------------------------


async def test_a_mutation_in_a_get_is_405_with_allow_post(client: GraphQLClient) -> None:
    for accept in (GRAPHQL_RESPONSE, JSON):
        response = await client.http.get(
            "/graphql", params={"query": "mutation { createAnonymousSession { token } }"}, headers={"accept": accept}
        )
        expected = refusal("mutations are not allowed when using GET", "METHOD_NOT_ALLOWED")
        assert (response.status_code, response.headers["allow"], response.json()) == (405, "POST", expected)
        assert response.headers["content-type"] == accept
        assert "set-cookie" not in response.headers


NOT_JSON = "POST requests must have content-type application/json"
NOT_A_STRING = "The GraphQL operation's `query` must be a string or null, if provided."


@pytest.mark.parametrize(
    ("request_args", "status", "message", "code"),
    [
        ({"content": b'{"query', "headers": {"content-type": JSON}}, 400, "Unable to parse request body as JSON", ""),
        ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 415, NOT_JSON, "UNSUPPORTED_MEDIA_TYPE"),
        ({"json": {}}, 400, "No GraphQL query found in the request", ""),
        ({"json": {"query": 0}}, 400, NOT_A_STRING, ""),
        ({"json": [TYPENAME]}, 400, "Batching is not enabled", ""),
        ({"json": {"query": "query A { __typename }", "operationName": "B"}}, 400, 'Unknown operation named "B".', ""),
        (
            {"json": TYPENAME, "headers": {"channel-token": "nope"}},
            400,
            "No channel matches the channel-token header",
            "CHANNEL_NOT_FOUND",
        ),
    ],
    ids=["malformed-json", "content-type", "no-query", "query-not-string", "batch", "unknown-operation", "channel"],
)
async def test_refusals_are_json_in_the_negotiated_media_type(
    client: GraphQLClient, request_args: dict[str, Any], status: int, message: str, code: str
) -> None:
    """Each refusal as a client asking for either media type, or for none, gets it ("" is BAD_REQUEST)."""
    for accept in (GRAPHQL_RESPONSE, JSON, None):
        headers = {**request_args.get("headers", {}), **({"accept": accept} if accept else {})}
        response = await client.http.post("/graphql", **{**request_args, "headers": headers})
        assert (response.status_code, response.headers["content-type"], response.json()) == (
            status,
            accept or JSON,
            refusal(message, code or "BAD_REQUEST"),
        )


async def test_an_unknown_path_and_another_method_are_json(client: GraphQLClient) -> None:
    missing = await client.http.get("/nowhere", headers=ACCEPT_GRAPHQL_RESPONSE)
    head = await client.http.head("/graphql", params=TYPENAME)
    assert (missing.status_code, missing.headers["content-type"], missing.json()) == (
        404,
        GRAPHQL_RESPONSE,
        refusal("Not Found", "NOT_FOUND"),
    )
    assert (head.status_code, head.headers["allow"], head.headers["content-type"]) == (405, "GET, POST", JSON)


async def test_an_unhandled_exception_is_a_coded_500() -> None:
    async def fail(request: Request) -> Response:
        raise RuntimeError("secret detail")

    app = Starlette(routes=[Route("/fail", fail)], exception_handlers=EXCEPTION_HANDLERS)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/fail")
    assert (response.status_code, response.json()) == (500, refusal("Internal server error", "INTERNAL_SERVER_ERROR"))


async def test_a_refused_preflight_is_json(make_settings: SettingsFactory, make_client: ClientFactory) -> None:
    client = await make_client(make_settings(cors_allow_origins=("https://shop.example",)))
    preflight = {"origin": "https://evil.example", "access-control-request-method": "POST"}
    response = await client.http.options("/graphql", headers=preflight)
    assert (response.status_code, response.json()) == (400, refusal("Disallowed CORS origin", "BAD_REQUEST"))


# --- The conformance audit ------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1" or os.environ.get("CI", "").lower() not in ("", "0", "false")


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason}, and the GraphQL-over-HTTP audit is required in CI")
    pytest.skip(reason)


def audit_install() -> Path:
    """tests/conformance with its pinned node_modules, installed once per lock into the cache folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for graphql-http's audit (apt-get install nodejs npm)")
    lock = (AUDIT_PROJECT / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (AUDIT_PROJECT / "package.json").read_bytes()).hexdigest()[:16]
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "session-service"
    cache = Path(os.environ.get("GRAPHQL_HTTP_AUDIT_CACHE", default_cache / "graphql-http-audit"))
    folder = cache / digest
    if not (folder / "node_modules" / "graphql-http" / "package.json").exists():
        staging = cache / f"{digest}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(AUDIT_PROJECT / name, staging / name)
        try:
            installed = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=staging,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            _unavailable(f"npm ci did not finish within {NPM_TIMEOUT} s (is the npm registry reachable?)")
        if installed.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            _unavailable(f"npm ci failed (is the npm registry reachable?):\n{installed.stderr[-2000:]}")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    shutil.copy(AUDIT_PROJECT / "audit.mjs", folder / "audit.mjs")  # the script itself is never cached
    return folder


def test_graphql_over_http_audit_passes(tmp_path: Path) -> None:
    folder = audit_install()
    with live_server(tmp_path) as port:
        ran = subprocess.run(
            ["node", "audit.mjs", f"http://127.0.0.1:{port}/graphql"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=AUDIT_TIMEOUT,
        )
    assert ran.returncode == 0, ran.stderr
    report: list[dict[str, Any]] = json.loads(ran.stdout)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "graphql-http-audit.json").write_text(json.dumps(report, indent=2) + "\n")
    counts = {status: sum(entry["status"] == status for entry in report) for status in ("ok", "warn", "error")}
    print(f"graphql-http audit: {counts['ok']} ok, {counts['warn']} warnings, {counts['error']} errors")
    assert [entry for entry in report if entry["status"] != "ok"] == []
    assert counts["ok"] == len(report) >= 61
