"""Denial of service without a session: introspection, fragment spreads, request heads.

Introspection and fragments go through the app in-process; the head limit (MAX_HEADER_BYTES) over
raw TCP to `python -m server`, whose memory is read from /proc while the attack runs.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from graphql import build_client_schema, get_introspection_query, print_schema

from schema.limits import INTROSPECTION_MAX_DEPTH
from schema.schema import build_schema
from server.settings import Settings, SettingsError
from tests.conftest import SettingsFactory
from tests.graphql import GraphQLClient, GraphQLResult, refusal
from tests.live_server import REPO_ROOT, SERVER_SETTINGS, live_server_process

MakeClient = Callable[[Settings], Awaitable[GraphQLClient]]
#: What GraphiQL asks for (every option graphql-core offers), and graphql-core's default.
GRAPHIQL_INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
INTROSPECTION_QUERIES = {"graphiql": GRAPHIQL_INTROSPECTION, "graphql-core": get_introspection_query()}
#: The attack of the issue: 15 aliases (MAX_QUERY_ALIASES allows them), each asking for the schema again.
CHAIN = "__schema { types { fields { args { type { ofType { ofType { ofType { ofType { name } } } } } } } } }"
ALIASED_SCHEMAS = "{ " + " ".join(f"s{n}: {CHAIN}" for n in range(1, 16)) + " }"


def assert_refused(result: GraphQLResult, message: str) -> None:
    """Refused before execution as the other limits are: HTTP 200, no data, exactly this BAD_USER_INPUT error."""
    assert (result.response.status_code, result.data, result.codes) == (200, None, ["BAD_USER_INPUT"])
    assert result.errors is not None and result.errors[0]["message"] == message


def doubling_fragments(levels: int, selection: str, on: str = "Query", operation: str = "{ ...F0 }") -> str:
    """`operation` spreads F0 and each fragment spreads the next one twice: `selection` is asked for 2**levels times."""
    fragments = [f"fragment F{n} on {on} {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)]
    return " ".join([operation, *fragments, f"fragment F{levels} on {on} {{ {selection} }}"])


def run_server(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`python -m server` with `settings` (and a SQLite file in `tmp_path`), to see it refuse them."""
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(DATABASE_URL=f"sqlite://{tmp_path / 'sessions.sqlite3'}", **settings)
    command = [sys.executable, "-m", "server"]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


# --- Introspection --------------------------------------------------------------------------------


async def test_aliased_introspection_is_refused(client: GraphQLClient) -> None:
    message = (
        "'anonymous' repeats __Schema.types, __Type.fields, __schema: an introspection query may ask for each once"
    )
    assert_refused(await client.execute(ALIASED_SCHEMAS), message)


@pytest.mark.parametrize("query", INTROSPECTION_QUERIES.values(), ids=INTROSPECTION_QUERIES.keys())
async def test_standard_introspection_is_served_whole(client: GraphQLClient, query: str) -> None:
    data = await client.ok(query)
    assert print_schema(build_client_schema(data)) == print_schema(build_schema()._schema)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query",
    [
        '{ a: __type(name: "Query") { name } b: __type(name: "Mutation") { name } }',
        "{ __schema { types { ...T } } } fragment T on __Type { a: fields { name } b: fields { type { name } } }",
        "{ __schema { types { name } more: types { kind } } }",
        "{ __schema { types { possibleTypes { name } interfaces { possibleTypes { name } } } } }",
    ],
    ids=["__type", "fields-in-a-fragment", "types", "possibleTypes"],
)
async def test_introspection_fields_that_multiply_the_answer_are_asked_once(client: GraphQLClient, query: str) -> None:
    result = await client.execute(query)
    assert (result.data, result.codes) == (None, ["BAD_USER_INPUT"])
    assert result.errors is not None and "an introspection query may ask for each once" in result.errors[0]["message"]


async def test_introspection_depth_is_bounded(client: GraphQLClient) -> None:
    deepest = get_introspection_query(type_depth=14)  # 20 levels
    assert (await client.execute(deepest)).errors is None
    refused = await client.execute(get_introspection_query(type_depth=15))
    assert_refused(refused, f"'IntrospectionQuery' exceeds maximum introspection depth of {INTROSPECTION_MAX_DEPTH}")


async def test_introspection_fields_are_counted_through_fragments(client: GraphQLClient) -> None:
    query = doubling_fragments(9, "name", on="__Type", operation="{ __schema { types { ...F0 } } }")
    assert_refused(await client.execute(query), "514 introspection fields found in 'anonymous'. Allowed: 400")


async def test_introspection_switch_still_refuses_the_standard_query(
    make_settings: SettingsFactory, make_client: MakeClient
) -> None:
    client: GraphQLClient = await make_client(make_settings(introspection=False))
    result = await client.execute(GRAPHIQL_INTROSPECTION)
    assert (result.data, set(result.codes)) == (None, {"BAD_USER_INPUT"})
    assert result.errors is not None
    assert result.errors[0]["message"].startswith("GraphQL introspection has been disabled")
    assert await client.ok("{ __typename }") == {"__typename": "Query"}


# --- Fragments spread in fragments: counted, not walked -------------------------------------------


async def test_aliases_behind_doubling_fragments_are_counted_not_walked(client: GraphQLClient) -> None:
    # Walking each spread (Strawberry's limiters) would take 2**64 steps; the count is exact at once.
    result = await client.execute(doubling_fragments(64, "a: __typename"))
    assert_refused(result, f"{2**64} aliases found. Allowed: 15")


async def test_depth_behind_doubling_fragments_is_measured_not_walked(
    make_settings: SettingsFactory, make_client: MakeClient
) -> None:
    client: GraphQLClient = await make_client(make_settings(max_query_depth=2))
    deep = doubling_fragments(64, "activeSession { user { channelPermissions { id } } }")
    assert_refused(await client.execute(deep), "'anonymous' exceeds maximum operation depth of 2")
    shallow = doubling_fragments(64, "activeSession { user { id } }")
    assert await client.ok(shallow) == {"activeSession": None}


# --- MAX_HEADER_BYTES -----------------------------------------------------------------------------

LIMIT = 16384  # the default
REFUSAL = json.dumps(
    refusal(f"Request line and headers are larger than {LIMIT} bytes", "REQUEST_HEADER_FIELDS_TOO_LARGE"),
    separators=(",", ":"),
).encode()
STREAM = 50 * 2**20
CHUNK = 65536


def test_max_header_bytes_defaults_to_16_kib() -> None:
    assert (
        Settings.from_env({}).max_header_bytes,
        Settings.from_env({"MAX_HEADER_BYTES": "4096"}).max_header_bytes,
    ) == (
        LIMIT,
        4096,
    )


@pytest.mark.parametrize("value", ["1023", "1048577", "16k"])
def test_a_bad_max_header_bytes_stops_the_server_with_one_line(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MAX_HEADER_BYTES": value})
    line = f"MAX_HEADER_BYTES={value!r} is not valid: expected a whole number from 1024 to 1048576"
    assert str(raised.value) == line
    result = run_server(tmp_path, MAX_HEADER_BYTES=value)
    assert (result.returncode, result.stderr) == (2, f"error: {line}\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    with live_server_process(tmp_path_factory.mktemp("heads")) as started:
        yield started


def head(size: int, *, in_target: bool = False, close: bool = True) -> bytes:
    """A GET /health head of exactly `size` bytes, padded in an x-pad header or in the target's query."""
    connection = "connection: close\r\n" if close else ""
    if in_target:
        base = f"GET /health? HTTP/1.1\r\nhost: 127.0.0.1\r\n{connection}\r\n"
        text = base.replace("? ", "?" + "a" * (size - len(base)) + " ")
    else:
        base = f"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n{connection}x-pad: \r\n\r\n"
        text = base.replace("x-pad: ", "x-pad: " + "a" * (size - len(base)))
    assert len(text) == size
    return text.encode()


def exchange(port: int, data: bytes) -> bytes:
    """Send `data` and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_and_body(answer: bytes) -> tuple[int, bytes]:
    head_part, _, body = answer.partition(b"\r\n\r\n")
    return int(head_part.split()[1]), body


def stream_forever(port: int, start: bytes, filler: bytes) -> tuple[int, bytes]:
    """Send `start`, then `filler` over and over (up to STREAM bytes) until the server stops reading.

    Returns how much was sent and what the server answered (b"" when it closed without an answer).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(start)
        sent = 0
        chunk = filler * (CHUNK // len(filler))
        try:
            while sent < STREAM:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while part := sock.recv(65536):
                answer += part
        except ConnectionResetError:
            pass  # what arrived before the reset was read
    return sent, answer


def resident_kib(process: subprocess.Popen[bytes]) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_head_at_the_limit_is_served_and_one_byte_more_is_431(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = server
    assert status_and_body(exchange(port, head(LIMIT))) == (200, b'{"status":"ok","database":"ok"}')
    answer = exchange(port, head(LIMIT + 1))
    assert status_and_body(answer) == (431, REFUSAL)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nconnection: close\r\n" in answer


def test_the_request_line_counts(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = server
    assert status_and_body(exchange(port, head(LIMIT, in_target=True)))[0] == 200
    assert status_and_body(exchange(port, head(LIMIT + 1, in_target=True))) == (431, REFUSAL)


def test_endless_headers_on_20_connections_are_cut_and_memory_stays_flat(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = server
    before = resident_kib(process)
    outcomes: list[tuple[int, bytes]] = []
    start = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: "

    def attack() -> None:
        outcomes.append(stream_forever(port, start, b"a"))

    attackers = [threading.Thread(target=attack) for _ in range(20)]
    for attacker in attackers:
        attacker.start()
    for attacker in attackers:
        attacker.join()
    grown = resident_kib(process) - before
    assert [status_and_body(answer) for _, answer in outcomes] == [(431, REFUSAL)] * 20
    assert all(sent < STREAM for sent, _ in outcomes)  # the server stopped reading: no attacker got 50 MB in
    assert grown < 20 * 1024, f"the server grew by {grown} KiB"


def test_endless_trailers_close_the_connection(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = server
    body = b'{"query": "{ __typename }"}'
    start = (
        b"POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\nx-trailer: "
    )
    sent, answer = stream_forever(port, start, b"a")
    assert (sent < STREAM, answer) == (True, b"")


def test_keep_alive_and_pipelining_still_work(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, _ = server
    request = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    # Ten requests in one write, one of them a head of the full limit that starts in the middle of a read.
    answer = exchange(port, request * 8 + head(LIMIT, close=False) + last)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 10
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # one request after another
    try:
        statuses = []
        for _ in range(3):
            connection.request("GET", "/health")
            response = connection.getresponse()
            statuses.append((response.status, response.read(), response.will_close))
    finally:
        connection.close()
    assert statuses == [(200, b'{"status":"ok","database":"ok"}', False)] * 3
