"""Support for fault tests: private Redis and PostgreSQL servers the test may stop at will, and
`python -m server` in a subprocess pointed at them.

The machine's own PostgreSQL (5432) and Redis (6379) serve every other test: nothing here touches
them. Every process started here is stopped by `stop()`/`close()` with bounded waits; use the
classes as context managers so that happens in a `finally`.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import services_required
from tests.live_server import REPO_ROOT, SERVER_SETTINGS, free_port, stop_process, wait_until_healthy

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"{reason} and REQUIRE_SERVICES=1")
    pytest.skip(reason)


class _Managed(ABC):
    """Context-manager protocol over `close()`."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------- Redis


class PrivateRedis(_Managed):
    """A redis-server of the test's own on a free loopback port; created stopped.

    DEBUG is enabled for local clients, so a test can freeze it with `DEBUG SLEEP`. Nothing is
    persisted: a restart starts empty, as a cache that lost its entries.
    """

    def __init__(self, workdir: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            unavailable("redis-server is not installed")
        self.executable = str(executable)
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, timeout: float = 5.0) -> redis.Redis:
        """A client that does not retry (redis-py retries 3 times with backoff by default)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self) -> None:
        assert self.process is None, "already running"
        self._starts += 1
        args = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--daemonize", "no", "--dir", str(self.workdir)]
        if _redis_major_version(self.executable) >= 7:
            args += ["--enable-debug-command", "local"]  # off by default since Redis 7
        with (self.workdir / f"redis-{self._starts}.log").open("wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with self.client(timeout=0.5) as probe:
            while True:
                if self.process.poll() is not None:
                    self.process = None
                    pytest.fail(f"redis-server exited at start: {self.log_text()}")
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"redis-server did not answer PING within {STARTUP_TIMEOUT} s")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            try:
                stop_process(self.process)
            finally:
                self.process = None

    close = stop

    def log_text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.workdir.glob("redis-*.log")))

    def keys(self, pattern: str = "*") -> list[str]:
        with self.client() as client:
            return sorted(key.decode() for key in client.keys(pattern))

    @contextmanager
    def frozen(self, seconds: float) -> Iterator[float]:
        """Block the server with `DEBUG SLEEP seconds` sent by a separate client (redis-cli).

        The context is entered once the server no longer answers and yields the `time.monotonic()`
        by which the freeze is over at the latest; it is left after DEBUG SLEEP has returned.
        """
        cli = shutil.which("redis-cli")
        if cli is None:
            unavailable("redis-cli is not installed")
        command = [str(cli), "-h", "127.0.0.1", "-p", str(self.port), "DEBUG", "SLEEP", str(seconds)]
        started = time.monotonic()
        sleeper = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            # The freeze has begun once a PING with a short timeout goes unanswered.
            with self.client(timeout=0.1) as probe:
                deadline = started + min(seconds / 2, 5.0)
                while True:
                    try:
                        probe.ping()
                    except redis.TimeoutError:
                        break
                    if time.monotonic() > deadline or sleeper.poll() is not None:
                        output = sleeper.communicate(timeout=STOP_TIMEOUT)[0] if sleeper.poll() is not None else b""
                        pytest.fail(f"DEBUG SLEEP did not freeze redis-server: {output!r}")
                    time.sleep(0.02)
            yield started + seconds
            output = sleeper.communicate(timeout=seconds + STOP_TIMEOUT)[0]
            assert sleeper.returncode == 0 and b"OK" in output, output
        finally:
            stop_process(sleeper)


def _redis_major_version(executable: str) -> int:
    output = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"v=(\d+)\.", output)
    return int(match.group(1)) if match else 0


# ----------------------------------------------------------------------------------------- PostgreSQL


class PrivatePostgres(_Managed):
    """A PostgreSQL cluster of the test's own (initdb into a temporary folder), on a free loopback port.

    As root, initdb refuses to run, so initdb and pg_ctl run as the `postgres` OS user through
    `runuser`, and the folder is handed to that user. Authentication is `trust` on loopback only.
    """

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root, initdb refuses root, and there is no `postgres` OS user to run it as")
            runuser = shutil.which("runuser")
            if runuser is None:
                unavailable("running as root, initdb refuses root, and `runuser` is not installed")
            self.as_user = [str(runuser), "-u", "postgres", "--"]
        # A short path, since the Unix socket lives in it (at most ~107 bytes), and under /tmp when
        # handed to `postgres`, which could not reach into a private TMPDIR of root's.
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-", dir="/tmp" if self.as_user else None))
        if self.as_user:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self._initialised = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, *args], capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)

    def start(self) -> None:
        if not self._initialised:
            initdb = self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            if initdb.returncode != 0:
                pytest.fail(f"initdb failed ({initdb.returncode}): {initdb.stderr or initdb.stdout}")
            self._initialised = True
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = self._pg_ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "30", "start")
        if started.returncode != 0:
            pytest.fail(f"pg_ctl start failed: {started.stderr or started.stdout}\n{self.log_text()}")

    def stop(self) -> None:
        """A fast shutdown: sessions are terminated, committed data stays."""
        if not self.running():
            return
        if self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop").returncode != 0:
            self._pg_ctl("-m", "immediate", "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return self._initialised and self._pg_ctl("status").returncode == 0

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _postgres_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: _version_key(path.parent.name))
    for bindir in reversed(candidates):
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).parent
    unavailable("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


# ----------------------------------------------------------------------------------------- the server


class ServerProcess(_Managed):
    """`python -m server` on a free loopback port, its stdout and stderr captured to `log`."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
        env.update(HOST="127.0.0.1", PORT=str(self.port), LOG_LEVEL="info", PYTHONDONTWRITEBYTECODE="1")
        env.update(settings)
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server"], cwd=REPO_ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT
            )
        wait_until_healthy(self.process, self.url, self.log, STARTUP_TIMEOUT)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_lines(self, text: str) -> list[str]:
        """The captured log lines that contain `text`."""
        return [line for line in self.log_text().splitlines() if text in line]


# ---------------------------------------------------------------------------------------- GraphQL calls

CREATE_ANONYMOUS_SESSION = "mutation { createAnonymousSession { token user { id } } }"
SESSION_FROM_TOKEN = "query S($t: String!) { sessionFromToken(token: $t) { activeOrderId user { identifier } } }"
ADD_ITEM = "mutation Add($v: ID!, $q: Int!) { addItemToOrder(productVariantId: $v, quantity: $q) { id userId } }"
LOGIN = """
mutation Login($u: String!, $p: String!) {
  login(username: $u, password: $p) {
    __typename
    ... on CachedSession { token activeOrderId user { identifier } }
    ... on ErrorResult { errorCode }
  }
}"""
LOGOUT = "mutation { logout { success } }"
ACTIVE_ORDER = "{ activeOrder { id lines { productVariantId quantity } } }"


class Timed:
    """GraphQL over HTTP that records how long each request took, with an optional bearer token."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)
        self.latencies: list[tuple[str, float]] = []

    def post(self, query: str, token: str | None = None, **variables: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        response = self.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        self.latencies.append((query.split("{", 2)[1].split("(")[0].strip(), time.perf_counter() - started))
        return response

    def data(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        """The `data` of a request that must succeed."""
        response = self.post(query, token, **variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def slowest(self, since: int = 0) -> tuple[str, float]:
        return max(self.latencies[since:], key=lambda item: item[1])

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Timed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def every_operation(client: Timed, password: str) -> str:
    """Create a guest session, fill its cart, resolve it, log in (the cart follows), resolve the
    new session, log out; returns the logged-out token, which must no longer resolve."""
    variant = f"sku-{secrets.token_hex(4)}"
    guest = client.data(CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]
    assert guest["user"] is None
    assert client.data(SESSION_FROM_TOKEN, t=guest["token"])["sessionFromToken"] == {
        "activeOrderId": None,
        "user": None,
    }
    order = client.data(ADD_ITEM, guest["token"], v=variant, q=2)["addItemToOrder"]
    assert order["userId"] is None
    login = client.data(LOGIN, guest["token"], u="superadmin", p=password)["login"]
    assert login["__typename"] == "CachedSession", login
    token: str = login["token"]
    # The guest's cart was merged into the user's active order (or became it).
    cart = client.data(ACTIVE_ORDER, token)["activeOrder"]
    assert cart["id"] == login["activeOrderId"]
    assert {"productVariantId": variant, "quantity": 2} in cart["lines"]
    resolved = client.data(SESSION_FROM_TOKEN, t=token)["sessionFromToken"]
    assert resolved == {"activeOrderId": cart["id"], "user": {"identifier": "superadmin"}}
    assert client.data(LOGOUT, token)["logout"] == {"success": True}
    assert client.data(SESSION_FROM_TOKEN, t=token)["sessionFromToken"] is None
    assert client.data(SESSION_FROM_TOKEN, t=guest["token"])["sessionFromToken"] is None
    return token
