"""Three `python -m server` processes on one PostgreSQL database, driven over real HTTP, in each
configuration that several instances may run: Redis behind an in-process first tier (pub/sub keeps
the tiers coherent), Redis alone, and the in-process cache alone (LISTEN/NOTIFY keeps it coherent).

Whatever one instance changes, the others see as soon as it has answered (it answers only once
every instance has applied the change): revocations, session updates, role changes. All start
together on a fresh database (all migrate and bootstrap), and two concurrent `clean-sessions` runs
share the backlog without removing anything twice. The invalidation channel is cut while requests
flow, and no revoked session is accepted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import redis

from server.clients import LISTENER_NAME
from tests.live_server import REPO_ROOT, free_port, stop_process
from tests.metrics_text import scrape

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STARTUP_TIMEOUT = 30.0
SUPERADMIN_PASSWORD = "scale-out-not-the-default"
#: Every variable the settings read, so the machine's own environment cannot leak into the servers.
SETTINGS_VARIABLES = frozenset(
    re.findall(r'reader\.\w+\(\s*"([A-Z_]+)"', (REPO_ROOT / "server" / "settings.py").read_text())
)

CREATE_ANONYMOUS_SESSION = "mutation { createAnonymousSession { token } }"
LOGIN = """
mutation Login($u: String!, $p: String!) {
  login(username: $u, password: $p) { __typename ... on CachedSession { token user { id } } }
}"""
SESSION_FROM_TOKEN = """
query S($t: String!) {
  sessionFromToken(token: $t) {
    id activeOrderId activeChannelId user { id channelPermissions { id permissions } }
  }
}"""
ADD_ITEM = 'mutation { addItemToOrder(productVariantId: "sku-1", quantity: 2) { id } }'
SET_ACTIVE_ORDER = "mutation O($id: ID!) { setActiveOrder(orderId: $id) { activeOrderId } }"
UNSET_ACTIVE_ORDER = "mutation { unsetActiveOrder { activeOrderId } }"
SET_ACTIVE_CHANNEL = "mutation C($id: ID!) { setActiveChannel(channelId: $id) { activeChannelId } }"
CREATE_CHANNEL = "mutation C($code: String!) { createChannel(input: {code: $code}) { id } }"
DEFAULT_CHANNEL = "{ activeChannel { id } }"
CREATE_ROLE = """
mutation R($code: String!, $channel: ID!) {
  createRole(input: {code: $code, permissions: [ReadOrder], channelIds: [$channel]}) { id }
}"""
UPDATE_ROLE = "mutation R($id: ID!) { updateRole(input: {id: $id, permissions: [ReadOrder, UpdateOrder]}) { id } }"
CREATE_USER = """
mutation U($identifier: String!, $password: String!, $roles: [ID!]) {
  createUser(input: {identifier: $identifier, password: $password, roleIds: $roles}) { id }
}"""
DELETE_BY_USER = "mutation D($id: ID!) { deleteSessionsByUser(userId: $id) }"
DELETE_BY_ORDER = "mutation D($id: ID!) { deleteSessionsByActiveOrderId(activeOrderId: $id) }"
LOGOUT = "mutation { logout { success } }"
CHANGE_PASSWORD = """
mutation P($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) { success }
}"""


@dataclass
class Instance:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    a: Instance
    b: Instance
    c: Instance
    database_url: str
    env: dict[str, str]
    config: str

    @property
    def others(self) -> tuple[Instance, Instance]:
        return self.b, self.c


#: name -> the settings that differ; "memory" relies on PostgreSQL's LISTEN/NOTIFY alone.
CONFIGS = {
    "redis-two-tiers": {"SESSION_CACHE": TEST_REDIS_URL},
    "redis-alone": {"SESSION_CACHE": TEST_REDIS_URL, "SESSION_CACHE_FIRST_TIER": "false"},
    "memory-notify": {"SESSION_CACHE": "memory"},
}


def _required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def _unavailable(service: str, url: str, error: BaseException) -> None:
    if _required():
        pytest.fail(f"{service} at {url} is unreachable and REQUIRE_SERVICES=1: {error}")
    pytest.skip(f"{service} at {url} is unreachable: {error}")


async def _admin_execute(statement: str) -> None:
    connection = await asyncpg.connect(TEST_DATABASE_URL.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def _start(env: dict[str, str], log: Path) -> Instance:
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=REPO_ROOT,
            env={**env, "PORT": str(port)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Instance(url=f"http://127.0.0.1:{port}", process=process, log=log)


def _wait_until_healthy(instances: list[Instance]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    waiting = list(instances)
    while waiting:
        for instance in list(waiting):
            if instance.process.poll() is not None:
                pytest.fail(f"a server exited with {instance.process.returncode}:\n{instance.log.read_text()}")
            try:
                if httpx.get(f"{instance.url}/health", timeout=1).status_code == 200:
                    waiting.remove(instance)
            except httpx.TransportError:
                pass
        if time.monotonic() > deadline:
            logs = "\n".join(instance.log.read_text() for instance in waiting)
            pytest.fail(f"/health did not answer 200 within {STARTUP_TIMEOUT} s:\n{logs}")
        time.sleep(0.1)


@pytest.fixture(scope="module", params=list(CONFIGS))
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three servers started at the same moment on a fresh database and a private Redis namespace."""
    try:
        asyncio.run(_admin_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as error:
        _unavailable("PostgreSQL", TEST_DATABASE_URL, error)
    redis_client = redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        redis_client.ping()
    except redis.RedisError as error:
        redis_client.close()
        _unavailable("Redis", TEST_REDIS_URL, error)

    name = f"scale_out_{secrets.token_hex(6)}"
    namespace = f"scale-out-{secrets.token_hex(6)}"
    database_url = urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path=f"/{name}"))
    tmp_path = tmp_path_factory.mktemp("scale-out")
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(
        HOST="127.0.0.1",
        DATABASE_URL=database_url,
        SESSION_CACHE_NAMESPACE=namespace,
        SESSION_CLEAN_INTERVAL="1h",  # scheduled on both, and not due while the tests run
        TOKEN_METHOD="bearer",
        SUPERADMIN_PASSWORD=SUPERADMIN_PASSWORD,
        LOGIN_RATE_LIMIT="off",
        LOG_LEVEL="info",  # the invalidation channel's "back" line is logged at INFO
        PYTHONDONTWRITEBYTECODE="1",
        **CONFIGS[request.param],
    )
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    instances: list[Instance] = []
    try:
        for name in "abc":
            instances.append(_start(env, tmp_path / f"{name}.log"))
        _wait_until_healthy(instances)
        a, b, c = instances
        yield Cluster(a=a, b=b, c=c, database_url=database_url, env=env, config=request.param)
    finally:
        for instance in instances:
            stop_process(instance.process)
        try:
            asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            keys = list(redis_client.scan_iter(match=f"{namespace}:*", count=1000))
            if keys:
                redis_client.delete(*keys)
            redis_client.close()


def graphql(instance: Instance, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{instance.url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=20
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def login(instance: Instance, username: str, password: str) -> tuple[str, str]:
    result = graphql(instance, LOGIN, u=username, p=password)["login"]
    assert result["__typename"] == "CachedSession", result
    return result["token"], result["user"]["id"]


def lookup(instance: Instance, token: str) -> dict[str, Any] | None:
    session: dict[str, Any] | None = graphql(instance, SESSION_FROM_TOKEN, t=token)["sessionFromToken"]
    return session


def anonymous(instance: Instance) -> str:
    token: str = graphql(instance, CREATE_ANONYMOUS_SESSION)["createAnonymousSession"]["token"]
    return token


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> str:
    token, _ = login(cluster.a, "superadmin", SUPERADMIN_PASSWORD)
    return token


def _new_user(cluster: Cluster, admin: str, roles: list[str] | None = None) -> tuple[str, str]:
    """A user created on A; returns (identifier, password)."""
    identifier, password = f"user-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    graphql(cluster.a, CREATE_USER, admin, identifier=identifier, password=password, roles=roles or [])
    return identifier, password


def test_both_instances_started_together_without_errors(cluster: Cluster) -> None:
    for instance in (cluster.a, cluster.b):
        log = instance.log.read_text()
        assert "Traceback" not in log and "ERROR" not in log, log
    users = asyncio.run(_fetch(cluster.database_url, "SELECT identifier FROM users"))
    channels = asyncio.run(_fetch(cluster.database_url, "SELECT code FROM channels"))
    migrations = asyncio.run(_fetch(cluster.database_url, "SELECT app, name FROM tortoise_migrations"))
    assert [row["identifier"] for row in users] == ["superadmin"]
    assert len(channels) == 1
    assert len(migrations) == len({(row["app"], row["name"]) for row in migrations}) > 0
    # the superadmin bootstrapped by one instance logs in on either
    login(cluster.b, "superadmin", SUPERADMIN_PASSWORD)


def seen_everywhere(cluster: Cluster, check: Callable[[Instance], bool]) -> None:
    """`check` holds on B and C at once: A answers a change only once every instance has applied it."""
    for instance in cluster.others:
        assert check(instance), f"{instance.log.stem} did not see it when A had answered"


def cached_everywhere(cluster: Cluster, token: str) -> dict[str, Any]:
    """The session as B and C report it (each now holds a copy), which is what A reports."""
    on_a = lookup(cluster.a, token)
    assert on_a is not None
    for instance in cluster.others:
        assert lookup(instance, token) == on_a
    return on_a


def test_a_session_created_on_a_resolves_on_the_others(cluster: Cluster) -> None:
    cached_everywhere(cluster, anonymous(cluster.a))


def test_delete_sessions_by_user_on_a_ends_the_session_everywhere(cluster: Cluster, admin: str) -> None:
    identifier, password = _new_user(cluster, admin)
    token, user_id = login(cluster.a, identifier, password)
    cached_everywhere(cluster, token)

    assert graphql(cluster.a, DELETE_BY_USER, admin, id=user_id) == {"deleteSessionsByUser": 1}

    seen_everywhere(cluster, lambda instance: lookup(instance, token) is None)


def test_delete_sessions_by_active_order_on_a_ends_the_session_everywhere(cluster: Cluster, admin: str) -> None:
    token = anonymous(cluster.a)
    order_id = graphql(cluster.a, ADD_ITEM, token)["addItemToOrder"]["id"]
    assert cached_everywhere(cluster, token)["activeOrderId"] == order_id

    assert graphql(cluster.a, DELETE_BY_ORDER, admin, id=order_id) == {"deleteSessionsByActiveOrderId": 1}

    seen_everywhere(cluster, lambda instance: lookup(instance, token) is None)


def test_logout_on_a_ends_the_session_everywhere(cluster: Cluster) -> None:
    token, _ = login(cluster.a, "superadmin", SUPERADMIN_PASSWORD)
    cached_everywhere(cluster, token)
    sent, received = SENT, RECEIVED
    before = scrape(cluster.a.url), scrape(cluster.b.url)

    assert graphql(cluster.a, LOGOUT, token) == {"logout": {"success": True}}

    seen_everywhere(cluster, lambda instance: lookup(instance, token) is None)
    after = scrape(cluster.a.url), scrape(cluster.b.url)
    messages = 0 if cluster.config == "redis-alone" else 1
    assert after[0].get(sent, 0) - before[0].get(sent, 0) == messages
    assert after[1].get(received, 0) - before[1].get(received, 0) == messages
    assert after[0][REVOKED_BY_LOGOUT] - before[0].get(REVOKED_BY_LOGOUT, 0) == 1


SENT = "session_service_invalidations_sent_total"
RECEIVED = "session_service_invalidations_received_total"
REVOKED_BY_LOGOUT = 'session_service_sessions_revoked_total{reason="logout"}'


def test_a_password_change_on_a_ends_the_other_sessions_everywhere(cluster: Cluster, admin: str) -> None:
    identifier, password = _new_user(cluster, admin)
    kept, _ = login(cluster.a, identifier, password)
    ended, _ = login(cluster.a, identifier, password)
    cached_everywhere(cluster, ended)

    changed = graphql(cluster.a, CHANGE_PASSWORD, kept, current=password, new=secrets.token_urlsafe(16))
    assert changed == {"changePassword": {"success": True}}

    seen_everywhere(cluster, lambda instance: lookup(instance, ended) is None)


def test_active_order_changes_on_a_are_seen_everywhere(cluster: Cluster) -> None:
    token = anonymous(cluster.a)
    order_id = graphql(cluster.a, ADD_ITEM, token)["addItemToOrder"]["id"]
    assert cached_everywhere(cluster, token)["activeOrderId"] == order_id

    assert graphql(cluster.a, UNSET_ACTIVE_ORDER, token) == {"unsetActiveOrder": {"activeOrderId": None}}
    seen_everywhere(cluster, lambda instance: lookup(instance, token)["activeOrderId"] is None)  # type: ignore[index]

    assert graphql(cluster.a, SET_ACTIVE_ORDER, token, id=order_id) == {"setActiveOrder": {"activeOrderId": order_id}}
    seen_everywhere(cluster, lambda instance: lookup(instance, token)["activeOrderId"] == order_id)  # type: ignore[index]


def test_active_channel_change_on_a_is_seen_everywhere(cluster: Cluster, admin: str) -> None:
    channel_id = graphql(cluster.a, CREATE_CHANNEL, admin, code=f"shop-{secrets.token_hex(4)}")["createChannel"]["id"]
    token = anonymous(cluster.a)
    assert cached_everywhere(cluster, token)["activeChannelId"] != channel_id

    assert graphql(cluster.a, SET_ACTIVE_CHANNEL, token, id=channel_id) == {
        "setActiveChannel": {"activeChannelId": channel_id}
    }

    seen_everywhere(cluster, lambda instance: lookup(instance, token)["activeChannelId"] == channel_id)  # type: ignore[index]


def test_a_role_change_on_a_changes_the_permissions_every_instance_reports(cluster: Cluster, admin: str) -> None:
    default_channel = graphql(cluster.a, DEFAULT_CHANNEL)["activeChannel"]["id"]
    role_id = graphql(cluster.a, CREATE_ROLE, admin, code=f"clerk-{secrets.token_hex(4)}", channel=default_channel)[
        "createRole"
    ]["id"]
    identifier, password = _new_user(cluster, admin, roles=[role_id])
    token, _ = login(cluster.a, identifier, password)
    before = cached_everywhere(cluster, token)
    assert before["user"]["channelPermissions"] == [{"id": default_channel, "permissions": ["ReadOrder"]}]

    graphql(cluster.a, UPDATE_ROLE, admin, id=role_id)

    after = [{"id": default_channel, "permissions": ["ReadOrder", "UpdateOrder"]}]
    seen_everywhere(cluster, lambda instance: lookup(instance, token)["user"]["channelPermissions"] == after)  # type: ignore[index]


def cut_invalidation_listeners(cluster: Cluster) -> None:
    """Kill every instance's listening connection: its PostgreSQL backend, or its Redis client."""
    if cluster.config == "memory-notify":
        killed = asyncio.run(
            _fetch(
                cluster.database_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = $1",
                LISTENER_NAME,
            )
        )
    else:
        with redis.Redis.from_url(TEST_REDIS_URL) as client:
            listeners = [c["id"] for c in client.client_list() if c["name"] == LISTENER_NAME]
            killed = [client.client_kill_filter(_id=listener) for listener in listeners]
    assert len(killed) >= 3, killed


def wait_for_log_lines(instances: tuple[Instance, ...], text: str, count: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while any(instance.log.read_text().count(text) < count for instance in instances):
        assert time.monotonic() < deadline, f"no {count} x {text!r} in the logs"
        time.sleep(0.01)


def test_a_cut_invalidation_channel_never_lets_a_revoked_session_through(cluster: Cluster) -> None:
    if cluster.config == "redis-alone":
        pytest.skip("no first tier: every lookup reads Redis, which the revoking instance updated itself")
    lost, back = "invalidation channel lost", "invalidation channel back"
    outages = cluster.b.log.read_text().count(lost)
    token, _ = login(cluster.a, "superadmin", SUPERADMIN_PASSWORD)
    cached_everywhere(cluster, token)

    # the channel goes down while lookups keep coming; its loss is noticed
    cut_invalidation_listeners(cluster)
    while any(instance.log.read_text().count(lost) <= outages for instance in cluster.others):
        for instance in cluster.others:
            assert lookup(instance, token) is not None
    # a revocation the others cannot hear of
    assert graphql(cluster.a, LOGOUT, token) == {"logout": {"success": True}}

    # from then on, through the outage and after the channel is back, the token is refused everywhere
    polls = 0
    while any(instance.log.read_text().count(back) <= outages for instance in cluster.others) or polls < 20:
        for instance in cluster.others:
            assert lookup(instance, token) is None
        polls += 1
    # and the channel carries revocations again
    again, _ = login(cluster.a, "superadmin", SUPERADMIN_PASSWORD)
    cached_everywhere(cluster, again)
    assert graphql(cluster.a, LOGOUT, again) == {"logout": {"success": True}}
    seen_everywhere(cluster, lambda instance: lookup(instance, again) is None)


EXPIRED = 4000
IDLE = 1000

INSERT_CLEANABLE = """
INSERT INTO sessions (created_at, updated_at, token_hash, type, expires, last_active_at, invalidated)
SELECT now(), now(), md5('scale-out-' || $1 || '-' || n) || md5('x' || n), 'anonymous',
       CASE WHEN n <= $2 THEN now() - interval '1 hour' ELSE now() + interval '1 day' END,
       now() - interval '30 days', false
FROM generate_series(1, $3) AS n
"""


def test_two_concurrent_clean_sessions_runs_remove_each_session_once(cluster: Cluster) -> None:
    # given 4000 expired and 1000 idle guest sessions in the shared database, besides the live ones
    live_before = asyncio.run(_fetch(cluster.database_url, "SELECT id FROM sessions"))
    asyncio.run(_fetch(cluster.database_url, INSERT_CLEANABLE, secrets.token_hex(4), EXPIRED, EXPIRED + IDLE))

    # when two operators run the clean command at the same moment
    env = {**cluster.env, "LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "server", "clean-sessions", "--batch-size", "50"]
    runs = [
        subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = []
    try:
        for run in runs:
            outputs.append(run.communicate(timeout=120))
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=10)

    # then both succeed, the totals add up, and only the live sessions are left
    removed = []
    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr
        assert "Traceback" not in stderr, stderr
        match = re.fullmatch(r"removed (\d+) sessions", stdout.strip())
        assert match, stdout
        removed.append(int(match.group(1)))
    assert sum(removed) == EXPIRED + IDLE, removed
    live_after = asyncio.run(_fetch(cluster.database_url, "SELECT id FROM sessions"))
    assert {row["id"] for row in live_after} == {row["id"] for row in live_before}
