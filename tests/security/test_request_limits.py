"""MAX_REQUEST_BYTES: bodies are counted as they stream, Content-Length is never trusted.

Each attack is sent through the ASGI app with httpx (where a lying Content-Length can be sent),
and the size attacks again over real TCP to `python -m server` on a free loopback port.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import SettingsFactory
from tests.graphql import refusal
from tests.live_server import live_server

QUERY = "{ activeChannel { code } }"
ANSWER = {"data": {"activeChannel": {"code": "__default_channel__"}}}
CHUNK = 1024
LIMIT = 4 * CHUNK
JSON_HEADERS = {"content-type": "application/json"}
TOO_LARGE = refusal(f"Request body is larger than {LIMIT} bytes", "PAYLOAD_TOO_LARGE")


def json_body(size: int) -> bytes:
    """A valid request for QUERY of exactly `size` bytes (the query padded with ignored spaces)."""
    base = len(json.dumps({"query": QUERY}))
    body = json.dumps({"query": QUERY + " " * (size - base)}).encode()
    assert len(body) == size
    return body


class CountedStream:
    """A request body of `chunks` chunks that records how many the server pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b" " * CHUNK


@pytest.fixture
async def http(make_settings: SettingsFactory, make_client) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    client = await make_client(make_settings(max_request_bytes=LIMIT))
    result: httpx.AsyncClient = client.http
    return result


async def test_body_at_the_limit_is_served(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", content=json_body(LIMIT), headers=JSON_HEADERS)
    assert (response.status_code, response.json()) == (200, ANSWER)


async def test_body_one_byte_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", content=json_body(LIMIT + 1), headers=JSON_HEADERS)
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert response.headers["connection"] == "close"


async def test_default_limit_is_64_kib(client) -> None:  # type: ignore[no-untyped-def]
    at_limit = await client.http.post("/graphql", content=json_body(65536), headers=JSON_HEADERS)
    over = await client.http.post("/graphql", content=json_body(65537), headers=JSON_HEADERS)
    assert (at_limit.status_code, over.status_code) == (200, 413)


async def test_big_declared_length_is_refused_before_reading_any_byte(http: httpx.AsyncClient) -> None:
    stream = CountedStream(chunks=10_000)
    headers = {**JSON_HEADERS, "content-length": str(10_000 * CHUNK)}
    response = await http.post("/graphql", content=stream, headers=headers)
    assert (response.status_code, stream.pulled) == (413, 0)


async def test_lying_small_content_length_is_cut_where_the_count_passes_the_limit(http: httpx.AsyncClient) -> None:
    stream = CountedStream(chunks=10_000)  # 10 MB behind a Content-Length of 20
    response = await http.post("/graphql", content=stream, headers={**JSON_HEADERS, "content-length": "20"})
    assert (response.status_code, stream.pulled) == (413, LIMIT // CHUNK + 1)


async def test_chunked_body_without_length_is_cut_at_the_limit(http: httpx.AsyncClient) -> None:
    stream = CountedStream(chunks=10_000)
    response = await http.post("/graphql", content=stream, headers=JSON_HEADERS)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert (response.status_code, stream.pulled) == (413, LIMIT // CHUNK + 1)


async def test_chunked_body_within_the_limit_is_served(http: httpx.AsyncClient) -> None:
    body = json_body(LIMIT)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = await http.post("/graphql", content=chunks(), headers=JSON_HEADERS)
    assert (response.status_code, response.json()) == (200, ANSWER)


# Over real TCP: `python -m server` with MAX_REQUEST_BYTES from its environment.


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with live_server(tmp_path_factory.mktemp("limits"), MAX_REQUEST_BYTES=str(LIMIT)) as port:
        yield port


def exchange(port: int, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a request head and part of a body, never finish it, and read the answer until the server closes.

    A server waiting for the rest of the body would leave `recv` to time out (socket.timeout fails the test).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def request_head(port: int, framing: str) -> str:
    return f"POST /graphql HTTP/1.1\nhost: 127.0.0.1:{port}\ncontent-type: application/json\n{framing}\n\n"


def test_server_refuses_a_big_content_length_at_once(server_port: int) -> None:
    # Only the head is sent: the 413 must come without a byte of the announced 10 MB.
    status, body = exchange(server_port, request_head(server_port, "content-length: 10000000"))
    assert (status, json.loads(body)) == (413, TOO_LARGE)


def test_server_cuts_an_endless_chunked_body(server_port: int) -> None:
    chunks = (f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n") * (LIMIT // CHUNK + 1)  # no last chunk: never ends
    status, body = exchange(server_port, request_head(server_port, "transfer-encoding: chunked"), chunks)
    assert (status, json.loads(body)) == (413, TOO_LARGE)


def test_server_serves_up_to_the_limit_and_refuses_one_byte_more(server_port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server_port}", timeout=10) as http:
        at_limit = http.post("/graphql", content=json_body(LIMIT), headers=JSON_HEADERS)
        over = http.post("/graphql", content=json_body(LIMIT + 1), headers=JSON_HEADERS)
    assert (at_limit.status_code, at_limit.json()) == (200, ANSWER)
    assert over.status_code == 413
