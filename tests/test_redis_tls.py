"""SESSION_CACHE=rediss://…: the client of server/clients.py against a private redis-server speaking TLS
with a certificate from a CA of the test's own, which the system does not trust."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import redis.asyncio

from server.clients import redis_client
from tests.faults import unavailable
from tests.live_server import free_port, stop_process

STARTUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class TlsRedis:
    port: int
    ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(directory: Path) -> None:
    """ca.pem (a new CA) and server.pem/server.key for 127.0.0.1, signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=session service test CA", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "1", "-extfile", "san.ext", cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    executable, openssl = shutil.which("redis-server"), shutil.which("openssl")
    if executable is None or openssl is None:
        unavailable("redis-server and openssl are needed for a Redis over TLS")
    directory = tmp_path_factory.mktemp("tls-redis")
    _certificates(directory)
    port = free_port()
    args = [executable, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--tls-cert-file", "server.pem", "--tls-key-file", "server.key",
            "--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no", "--dir", str(directory)]  # fmt: skip
    with (directory / "redis.log").open("wb") as log:
        process = subprocess.Popen(args, cwd=directory, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                unavailable(f"redis-server cannot serve TLS here: {(directory / 'redis.log').read_text()[-300:]}")
            probe = redis.Redis(
                host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(directory / "ca.pem"), socket_timeout=0.5
            )
            try:
                if probe.ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    pytest.fail("the TLS redis-server did not answer PING in time")
                time.sleep(0.05)
            finally:
                probe.close()
        yield TlsRedis(port, directory / "ca.pem")
    finally:
        stop_process(process)


async def _ping(url: str) -> bool:
    client = redis_client(url, socket_timeout=2.0)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def test_rediss_refuses_a_certificate_the_system_does_not_trust(tls_redis: TlsRedis) -> None:
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await _ping(f"rediss://127.0.0.1:{tls_redis.port}/0")


async def test_rediss_trusts_the_ca_bundle_the_url_names(tls_redis: TlsRedis) -> None:
    assert await _ping(f"rediss://127.0.0.1:{tls_redis.port}/0?ssl_ca_certs={tls_redis.ca}")


async def test_rediss_checks_the_host_name(tls_redis: TlsRedis) -> None:
    # the certificate names 127.0.0.1, not localhost
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED|match"):
        await _ping(f"rediss://localhost:{tls_redis.port}/0?ssl_ca_certs={tls_redis.ca}")


async def test_rediss_without_verification_connects_only_when_asked(tls_redis: TlsRedis) -> None:
    assert await _ping(f"rediss://127.0.0.1:{tls_redis.port}/0?ssl_cert_reqs=none")


async def test_plain_redis_cannot_speak_to_a_tls_port(tls_redis: TlsRedis) -> None:
    with pytest.raises(redis.RedisError):
        await _ping(f"redis://127.0.0.1:{tls_redis.port}/0")
