"""`python -m server` as operators run it: subprocesses from the repository root on a temporary database."""

from __future__ import annotations

import fcntl
import os
import pty
import secrets
import select
import shutil
import sqlite3
import subprocess
import sys
import termios
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from tortoise.context import TortoiseContext

from models import Session, SessionType
from models.config import tortoise_config
from schema.schema import build_schema
from server.services.channel import SUPER_ADMIN_ROLE_CODE
from tests.live_server import REPO_ROOT, SERVER_SETTINGS, live_server


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'nested' / 'sessions.sqlite3'}"


def run_server(
    *args: str, database_url: str | None, input: str = "", cwd: Path | str = REPO_ROOT, **environ: str
) -> subprocess.CompletedProcess[str]:
    """`python -m server ARGS` with `environ` (and DATABASE_URL unless None) as its settings, and `input`
    on its standard input. Run elsewhere than the repository root, it finds the code
    through PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if Path(cwd) != REPO_ROOT:
        env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sqlite_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite://"))


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ((), "PORT", "http"),
        (("serve",), "SESSION_DURATION", "forever"),
        (("migrate",), "TOKEN_METHOD", "header"),
        (("clean-sessions",), "SESSION_CACHE", "memcache"),
        ((), "HOST", "0.0.0.0:8000"),
        ((), "SUPERADMIN_IDENTIFIER", "x" * 300),
    ],
)
def test_bad_setting_exits_2_with_one_line_naming_the_variable(
    database_url: str, command: tuple[str, ...], variable: str, value: str
) -> None:
    result = run_server(*command, database_url=database_url, **{variable: value})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "Traceback" not in result.stderr
    assert not sqlite_path(database_url).exists()


def test_bad_database_url_error_hides_the_password(database_url: str) -> None:
    result = run_server("migrate", database_url="postgres://app:Sup3r-s3cret@/")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Sup3r-s3cret" not in result.stderr


def test_migrate_creates_the_sqlite_file_with_the_tables(database_url: str) -> None:
    result = run_server("migrate", database_url=database_url)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(sqlite_path(database_url)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"channels", "roles", "users", "orders", "order_lines", "sessions"} <= tables


def test_migrate_twice_is_harmless(database_url: str) -> None:
    assert run_server("migrate", database_url=database_url).returncode == 0
    second = run_server("migrate", database_url=database_url)
    assert second.returncode == 0, second.stderr


def test_export_schema_prints_the_sdl(database_url: str) -> None:
    result = run_server("export-schema", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == build_schema().as_str() + "\n"
    assert "type Query" in result.stdout


def test_export_schema_writes_the_output_file(tmp_path: Path, database_url: str) -> None:
    output = tmp_path / "schema.graphql"
    result = run_server("export-schema", "--output", str(output), database_url=database_url)
    assert (result.returncode, result.stdout) == (0, "")
    assert output.read_text() == build_schema().as_str() + "\n"


async def _insert_sessions(database_url: str, expired: int, live: int) -> tuple[list[str], list[str]]:
    now = datetime.now(UTC)
    expired_hashes = [secrets.token_hex(32) for _ in range(expired)]
    live_hashes = [secrets.token_hex(32) for _ in range(live)]
    async with TortoiseContext() as context:
        await context.init(config=tortoise_config(database_url))
        for token_hash in expired_hashes:
            await Session.create(
                token_hash=token_hash, type=SessionType.ANONYMOUS, expires=now - timedelta(hours=1), last_active_at=now
            )
        for token_hash in live_hashes:
            await Session.create(
                token_hash=token_hash, type=SessionType.ANONYMOUS, expires=now + timedelta(days=1), last_active_at=now
            )
    return expired_hashes, live_hashes


def _stored_hashes(database_url: str) -> set[str]:
    with sqlite3.connect(sqlite_path(database_url)) as connection:
        return {row[0] for row in connection.execute("SELECT token_hash FROM sessions")}


async def test_clean_sessions_drains_the_whole_backlog_in_batches(database_url: str) -> None:
    assert run_server("migrate", database_url=database_url).returncode == 0
    expired, live = await _insert_sessions(database_url, expired=5, live=2)
    assert _stored_hashes(database_url) == set(expired) | set(live)

    result = run_server("clean-sessions", "--batch-size", "2", database_url=database_url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "removed 5 sessions"
    assert _stored_hashes(database_url) == set(live)


@pytest.mark.parametrize("batch_size", ["0", "-1", "two", "100001"])
def test_clean_sessions_rejects_a_bad_batch_size(database_url: str, batch_size: str) -> None:
    result = run_server("clean-sessions", "--batch-size", batch_size, database_url=database_url)
    assert result.returncode == 2
    assert "--batch-size" in result.stderr and "Traceback" not in result.stderr
    assert not sqlite_path(database_url).exists()


def test_an_unreachable_database_stops_the_server_with_one_line(tmp_path: Path) -> None:
    # given a PostgreSQL URL on a port where nothing listens
    unreachable = "postgres://postgres:hunter2@127.0.0.1:9/sessions"

    # when the server starts
    result = run_server(database_url=unreachable)

    # then it exits 1 with one line that names the setting and never shows the password
    lines = result.stderr.strip().splitlines()
    assert (result.returncode, len(lines)) == (1, 1), result.stderr
    assert lines[0].startswith("error: cannot open the database named by DATABASE_URL")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


# --- Usage, version and settings ----------------------------------------------------------------

COMMANDS = [
    (),
    ("serve",),
    ("migrate",),
    ("clean-sessions",),
    ("export-schema",),
    ("create-user",),
    ("set-password",),
    ("sessions",),
    ("sessions", "list"),
    ("sessions", "revoke"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(command) or "python -m server" for command in COMMANDS])
def test_every_command_has_help_whatever_the_settings(database_url: str, command: tuple[str, ...]) -> None:
    result = run_server(*command, "--help", database_url=database_url, PORT="http")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(" ".join(("usage: python -m server", *command)))
    assert not sqlite_path(database_url).exists()


def test_version_is_the_projects() -> None:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        version = tomllib.load(file)["project"]["version"]
    result = run_server("--version", database_url=None)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"python -m server {version}\n", "")


@pytest.mark.parametrize(
    "args",
    [
        ("create-user",),
        ("set-password",),
        ("sessions",),
        ("sessions", "list"),
        ("sessions", "forget", "alice"),
        ("create-user", "alice", "--role"),
        ("no-such-command",),
    ],
)
def test_bad_usage_exits_2_with_the_usage(database_url: str, args: tuple[str, ...]) -> None:
    result = run_server(*args, database_url=database_url)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: python -m server") and "Traceback" not in result.stderr
    assert not sqlite_path(database_url).exists()


def test_every_bad_setting_is_reported_at_once_one_line_each(database_url: str) -> None:
    result = run_server("migrate", database_url=database_url, PORT="http", TOKEN_METHOD="header", LOG_LEVEL="loud")
    assert result.returncode == 2
    assert [line.split("=")[0] for line in result.stderr.splitlines()] == [
        "error: PORT",
        "error: TOKEN_METHOD",
        "error: LOG_LEVEL",
    ]
    assert not sqlite_path(database_url).exists()


def test_the_env_file_of_the_working_directory_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    # given a .env that names the database and a bad SESSION_DURATION, which the environment overrides
    database = tmp_path / "from-dotenv.sqlite3"
    (tmp_path / ".env").write_text(f"# settings\nDATABASE_URL=sqlite://{database}\nSESSION_DURATION='forever'\n")

    # when a command runs there
    result = run_server("migrate", database_url=None, cwd=tmp_path, SESSION_DURATION="1h")

    # then the file's database is migrated, and its bad value never seen
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert database.exists()


def test_bad_values_from_the_env_file_are_reported_with_the_environments(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=8000\nSESSION_DURATION=forever\nTOKEN_METHOD=cookie\n")
    result = run_server("migrate", database_url=None, cwd=tmp_path, TOKEN_METHOD="header")
    assert result.returncode == 2
    assert [line.split("=")[0] for line in result.stderr.splitlines()] == [
        "error: SESSION_DURATION",
        "error: TOKEN_METHOD",
    ]
    assert not (tmp_path / "data").exists()


def test_a_malformed_env_file_exits_2_naming_its_lines(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=8000\nSUPERADMIN_PASSWORD='unclosed s3cret\n")
    result = run_server("migrate", database_url=None, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: .env line 2: expected KEY=VALUE (a quoted value closes on its line)\n"


# --- Users and sessions -------------------------------------------------------------------------

LOGIN = """
mutation Login($u: String!, $p: String!) {
  login(username: $u, password: $p) { __typename ... on CachedSession { id token } }
}"""
SESSION_FROM_TOKEN = "query S($t: String!) { sessionFromToken(token: $t) { id user { identifier } } }"
FIRST_PASSWORD = "first-Password-1"
SECOND_PASSWORD = "second-Password-2"
INVISIBLE = "identifier must not contain invisible, control or unassigned characters"
PROMPT_END = b"password: "
NO_PASSWORD = "no password on standard input: pipe one line, or run the command in a terminal"


@dataclass(frozen=True)
class Deployment:
    """A database and a session cache shared by a running server and the commands."""

    database_url: str
    cache: dict[str, str]


@pytest.fixture(params=["sqlite", "postgres+redis", "postgres+memory"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """SQLite without a cache (what a command deletes is gone for the server at once); PostgreSQL with
    Redis, the cache the server and the commands share (in a namespace of the test's own); PostgreSQL
    with the in-process cache, which the commands reach through the invalidation channel."""
    if request.param == "sqlite":
        yield Deployment(f"sqlite://{tmp_path / 'shared.sqlite3'}", {"SESSION_CACHE": "noop"})
        return
    database_url: str = request.getfixturevalue("postgres_url")
    if request.param == "postgres+memory":
        yield Deployment(database_url, {"SESSION_CACHE": "memory"})
        return
    redis_url: str = request.getfixturevalue("redis_url")
    namespace = f"pytest.cli.{uuid.uuid4().hex}"
    try:
        yield Deployment(database_url, {"SESSION_CACHE": redis_url, "SESSION_CACHE_NAMESPACE": namespace})
    finally:
        with redis.Redis.from_url(redis_url) as client:
            keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
            if keys:
                client.delete(*keys)


@pytest.fixture(scope="module")
def bootstrapped_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database after a server's first start (default channel, SuperAdmin role, superadmin)."""
    tmp_path = tmp_path_factory.mktemp("bootstrapped")
    with live_server(tmp_path, DATABASE_URL=f"sqlite://{tmp_path / 'first-start.sqlite3'}"):
        pass
    return tmp_path / "first-start.sqlite3"


@pytest.fixture
def bootstrapped(bootstrapped_once: Path, tmp_path: Path) -> str:
    """DATABASE_URL of a copy of that database, the test's own."""
    copy = tmp_path / "sessions.sqlite3"
    shutil.copyfile(bootstrapped_once, copy)
    return f"sqlite://{copy}"


def operator(deployment: Deployment, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
    return run_server(*args, database_url=deployment.database_url, input=input, LOG_LEVEL="warning", **deployment.cache)


def graphql(port: int, query: str, **variables: str) -> dict[str, Any]:
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=10)
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def login(port: int, identifier: str, password: str) -> dict[str, Any]:
    result: dict[str, Any] = graphql(port, LOGIN, u=identifier, p=password)["login"]
    return result


def session_from_token(port: int, token: str) -> dict[str, Any] | None:
    session: dict[str, Any] | None = graphql(port, SESSION_FROM_TOKEN, t=token)["sessionFromToken"]
    return session


def test_create_user_and_set_password_change_what_login_accepts_and_end_the_sessions(
    tmp_path: Path, deployment: Deployment
) -> None:
    with live_server(tmp_path, DATABASE_URL=deployment.database_url, **deployment.cache) as port:
        # given a user created by the command, logged in
        created = operator(deployment, "create-user", " Alice ", input=f"{FIRST_PASSWORD}\n")
        assert (created.returncode, created.stdout, created.stderr) == (
            0,
            "created the user 'alice' (id 2); roles: none\n",
            "",
        )
        session = login(port, "alice", FIRST_PASSWORD)
        assert session_from_token(port, session["token"]) == {"id": session["id"], "user": {"identifier": "alice"}}

        # when the operator sets a new password
        result = operator(deployment, "set-password", "ALICE", input=f"{SECOND_PASSWORD}\nignored\n")

        # then the session has ended and only the new password logs in
        assert (result.returncode, result.stdout, result.stderr) == (
            0,
            "set the password of 'alice' and ended their sessions\n",
            "",
        )
        assert session_from_token(port, session["token"]) is None
        assert login(port, "alice", FIRST_PASSWORD)["__typename"] == "InvalidCredentialsError"
        assert login(port, "alice", SECOND_PASSWORD)["__typename"] == "CachedSession"


def test_sessions_list_shows_each_session_and_revoke_ends_them_all(tmp_path: Path, deployment: Deployment) -> None:
    with live_server(tmp_path, DATABASE_URL=deployment.database_url, **deployment.cache) as port:
        assert operator(deployment, "create-user", "bob", input=f"{FIRST_PASSWORD}\n").returncode == 0
        sessions = [login(port, "bob", FIRST_PASSWORD) for _ in range(2)]
        assert all(session_from_token(port, session["token"]) for session in sessions)  # cached now

        listing = operator(deployment, "sessions", "list", "BOB")
        assert (listing.returncode, listing.stderr) == (0, "")
        header, *rows, summary = listing.stdout.splitlines()
        assert header.split("  ")[0] == "id" and header.split() == [
            "id", "created", "last", "active", "expires", "type", "channel"
        ]  # fmt: skip
        assert summary == "2 sessions of 'bob', times in UTC"
        assert sorted(row.split()[0] for row in rows) == sorted(session["id"] for session in sessions)
        for row in rows:
            _, created, _, _, _, expires, _, kind, channel = row.split()
            assert (len(created), kind, channel) == (10, "authenticated", "__default_channel__")
            assert expires > created  # ISO dates: a year later

        revoked = operator(deployment, "sessions", "revoke", "bob")
        assert (revoked.returncode, revoked.stdout, revoked.stderr) == (0, "ended 2 sessions of 'bob'\n", "")
        assert [session_from_token(port, session["token"]) for session in sessions] == [None, None]
        assert operator(deployment, "sessions", "list", "bob").stdout == "'bob' has no sessions\n"
        assert operator(deployment, "sessions", "revoke", "bob").stdout == "ended 0 sessions of 'bob'\n"


def test_create_user_gives_the_roles_named_by_code(bootstrapped: str) -> None:
    database_url = bootstrapped
    created = run_server(
        "create-user", "carol", "--role", SUPER_ADMIN_ROLE_CODE, database_url=database_url, input="pw\n"
    )
    assert (created.returncode, created.stdout) == (
        0,
        f"created the user 'carol' (id 2); roles: {SUPER_ADMIN_ROLE_CODE}\n",
    )


@pytest.mark.parametrize(
    ("args", "input", "error"),
    [
        (("create-user", "dave", "--role", "Nope", "--role", "Other"), "pw\n", "no role has the code 'Nope', 'Other'"),
        (("create-user", "da\u200bve"), "pw\n", INVISIBLE),
        (("create-user", "d" * 256), "pw\n", "identifier must be 1 to 255 characters"),
        (("create-user", "  "), "pw\n", "identifier must be 1 to 255 characters"),
        (("create-user", "dave"), "x" * 1025 + "\n", "password must be 1 to 1024 characters"),
        (("create-user", "dave"), "\n", "password must be 1 to 1024 characters"),
        (("create-user", "dave"), "", NO_PASSWORD),
        (("create-user", "superadmin"), "pw\n", "a user with the identifier 'superadmin' already exists"),
        (("set-password", "nobody"), "pw\n", "no user has the identifier 'nobody'"),
        (("set-password", "superadmin"), "x" * 1025 + "\n", "password must be 1 to 1024 characters"),
        (("sessions", "list", "nobody"), "", "no user has the identifier 'nobody'"),
        (("sessions", "revoke", "no\u200bbody"), "", INVISIBLE),
    ],
)  # fmt: skip
def test_a_refused_command_exits_1_with_one_line_and_changes_nothing(
    bootstrapped: str, args: tuple[str, ...], input: str, error: str
) -> None:
    database_url = bootstrapped
    users_before = _users(database_url)

    result = run_server(*args, database_url=database_url, input=input, SESSION_CACHE="noop")

    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"error: {error}\n")
    assert _users(database_url) == users_before


def test_a_command_on_an_unreachable_database_exits_1_with_one_line() -> None:
    result = run_server("create-user", "erin", database_url="postgres://postgres:hunter2@127.0.0.1:9/x", input="pw\n")
    lines = result.stderr.splitlines()
    assert (result.returncode, len(lines)) == (1, 1), result.stderr
    assert lines[0].startswith("error: create-user failed: ")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_commands_that_end_sessions_warn_once_that_servers_with_the_memory_cache_are_out_of_reach(
    database_url: str,
) -> None:
    assert run_server("create-user", "frank", database_url=database_url, input="pw\n").stderr == ""
    warning = (
        "warning: SESSION_CACHE=memory: a running server cannot be reached from here and may keep a cached copy of"
        " these sessions for up to 90 seconds (SESSION_CACHE_TTL)\n"
    )
    for args, input in ((("set-password", "frank"), "pw2\n"), (("sessions", "revoke", "frank"), "")):
        result = run_server(*args, database_url=database_url, input=input, SESSION_CACHE_TTL="90")
        assert (result.returncode, result.stderr) == (0, warning)
    assert run_server("sessions", "list", "frank", database_url=database_url).stderr == ""


def test_set_password_at_a_terminal_asks_twice_without_echo(database_url: str) -> None:
    assert run_server("create-user", "grace", database_url=database_url, input=f"{FIRST_PASSWORD}\n").returncode == 0

    typed, output, returncode = _at_a_terminal(
        ["set-password", "grace"],
        database_url,
        [SECOND_PASSWORD, SECOND_PASSWORD],
    )

    assert returncode == 0, output
    assert typed == 2 and SECOND_PASSWORD not in output
    assert output.index("New password: ") < output.index("Repeat the new password: ")
    assert "set the password of 'grace' and ended their sessions" in output


def test_two_different_passwords_at_a_terminal_change_nothing(database_url: str) -> None:
    assert run_server("create-user", "heidi", database_url=database_url, input=f"{FIRST_PASSWORD}\n").returncode == 0
    stored = _password_hashes(database_url)

    _, output, returncode = _at_a_terminal(
        ["set-password", "heidi"],
        database_url,
        [SECOND_PASSWORD, "typo"],
    )

    assert returncode == 1 and "error: the two passwords differ: nothing was changed" in output
    assert _password_hashes(database_url) == stored


def _users(database_url: str) -> list[str]:
    with sqlite3.connect(sqlite_path(database_url)) as connection:
        return [row[0] for row in connection.execute("SELECT identifier FROM users ORDER BY id")]


def _password_hashes(database_url: str) -> list[str]:
    with sqlite3.connect(sqlite_path(database_url)) as connection:
        return [row[0] for row in connection.execute("SELECT password_hash FROM users ORDER BY id")]


def _at_a_terminal(args: list[str], database_url: str, answers: list[str]) -> tuple[int, str, int]:
    """Run a command on a pseudo-terminal of its own (its controlling terminal, as getpass wants);
    type each answer once its password prompt is shown. Returns the answers typed, everything the terminal
    showed, and the exit code."""
    env = {key: value for key, value in os.environ.items() if key not in SERVER_SETTINGS}
    env.update(DATABASE_URL=database_url, SESSION_CACHE="noop")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "server", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
        # The child leads a new session: the terminal becomes its controlling terminal, /dev/tty for getpass.
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(secondary)
    shown, typed = b"", 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # EIO: the command exited and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if typed < len(answers) and shown.count(PROMPT_END) > typed:
                os.write(primary, answers[typed].encode() + b"\n")
                typed += 1
            elif process.poll() is not None and not ready:
                break
        returncode = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    return typed, shown.decode(errors="replace"), returncode


def test_a_command_hashes_with_the_password_hashing_settings(database_url: str) -> None:
    costs = {"PASSWORD_HASH_MEMORY_KIB": "47104", "PASSWORD_HASH_TIME_COST": "1"}

    result = run_server("create-user", "ivan", database_url=database_url, input=f"{FIRST_PASSWORD}\n", **costs)

    assert result.returncode == 0, result.stderr
    (stored,) = _password_hashes(database_url)
    assert stored.startswith("$argon2id$v=19$m=47104,t=1,p=1$")
